"""What an auditor reads: the night's record, the hash-chained ledger and its signed checkpoints, OpenLineage
events, the auditor bundle, retention with its purge entries."""
