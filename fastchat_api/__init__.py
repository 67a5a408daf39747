"""fastchat_api: an aiohttp-native, drop-in replacement for FastChat's OpenAI API server."""

__version__ = "0.1.0"
