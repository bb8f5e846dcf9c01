"""Reports (统计报表) for the admin console: pure aggregation of stored history, no I/O (see `hotline`)."""
