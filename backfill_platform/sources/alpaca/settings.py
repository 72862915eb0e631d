"""Alpaca constants (non-secret): the bars route, its page bound, the defaults of the source's options."""

from datetime import date

BARS_ROUTE = "/v2/stocks/bars"
MAX_LIMIT = 10_000  # bars per page, counted across every symbol of the request
FIRST_DAY = date(2016, 1, 1)  # Alpaca's historical stock data starts in 2016; BACKFILL_ALPACA_START overrides it
TIMEZONE = "America/New_York"  # a bar belongs to the New York calendar day of its timestamp
TIMEFRAMES = "15Min,1Hour,4Hour,1Day"  # what the replaced backfill kept (m15, h1, h4, d1); add 1Min to the list
# A small default universe so the sandbox demo has something to fetch; a real watchlist sets BACKFILL_ALPACA_SYMBOLS.
SYMBOLS = "AAPL,MSFT,NVDA,AMZN,GOOGL,META,TSLA,SPY,QQQ,IWM"
FEED = "iex"  # free accounts; `sip` needs a subscription
FEEDS = ("iex", "sip", "otc")
ADJUSTMENT = "raw"
ADJUSTMENTS = ("raw", "split", "dividend", "all")
# The query string of one request (symbols, times, page token) stays under this: nginx, Apache and most load
# balancers refuse request lines past 8 KB, so many symbols go in one request without tripping a proxy.
MAX_QUERY_CHARS = "6000"
PAGE_TOKEN_RESERVE = 256  # query characters kept free for the next_page_token of later pages
# Bars held before the days they belong to commit: a long range is cut into chunks of days that fit (1Min bars of
# thousands of symbols); each chunk costs at most one extra page per symbol group.
BUFFER_BARS = "500000"
# Per day, a warning when fewer than this share of the universe has bars (days with no bars at all are closed).
MIN_SYMBOL_SHARE = "0.9"
SCHEDULE_WINDOW_DAYS = 2  # yesterday's bars are final the next morning; the day before covers a late run
SCHEDULE_TIME = "06:00"
