"""arq job functions: plain ``async def job(ctx, ...)``; each answers a JobPayload dict."""
