"""Task attachments: object storage (a local directory or S3), the ClamAV scanner client, and
the upload pipeline built on them."""
