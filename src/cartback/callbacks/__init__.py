"""Provider callbacks in: delivery reports, inbound SMS keywords, the Telegram bot and email
bounces and complaints, each verified with the store's own secrets (``api``), then applied
once however often the provider sends it (``service``)."""
