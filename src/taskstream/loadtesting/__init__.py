"""Load-test support in the library: provisioning users (seed), the run directory's files
(credentials, recorded commands) and the verification of a run against PostgreSQL. The locust
scenarios (``loadtest/``) and the ``taskstream loadtest`` command use it; it never imports them.
"""
