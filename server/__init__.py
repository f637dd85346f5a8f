"""Online server: aiohttp app, live session signals in Redis, the recommendation blend."""
