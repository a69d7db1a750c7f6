"""Watching the model in service: drift against the champion's own training data (Evidently), windows and
persistence, realised performance and SLAs as labels arrive, estimated performance while they are pending."""
