"""huiyan (慧眼): video contact centre and conferencing for public legal services, on Asterisk."""

__version__ = "0.1.0"
