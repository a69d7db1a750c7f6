"""Data in: the engagement's schema, a night's batch from files, a database or object storage, landed byte for
byte and fingerprinted; seeded samples of large nights; late labels joined to what was served."""
