"""The readable data model and its agreement check with the SQLAlchemy models."""
