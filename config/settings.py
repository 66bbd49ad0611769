"""Settings, all from the environment (django-environ); `.env` is read when present.

Defaults are the embedded stack: SQLite, in-memory channel layer, bundled sample data,
paper broker, immediate task backend. See `.env.example` for every variable.
"""

import os
from pathlib import Path

import environ

from config.env_checks import validate
from config.logging import build_logging

BASE_DIR = Path(__file__).resolve().parent.parent

# numba (used by pandas-ta and the backtester) keeps compiled functions on disk so that
# commands and workers do not pay the compile time at every start.
os.environ.setdefault("NUMBA_CACHE_DIR", str(BASE_DIR / ".cache" / "numba"))

env = environ.Env()
if (BASE_DIR / ".env").is_file() and not os.environ.get("DJANGO_IGNORE_DOTENV"):
    env.read_env(BASE_DIR / ".env")

# --- core -------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str(
    "SECRET_KEY", default="dev-insecure-change-me-" + "x" * 40 if DEBUG else environ.Env.NOTSET
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "channels",
    "django_tasks_db",
    "marketdata",
    "strategies",
    "execution",
    "trading",
]

MIDDLEWARE = [
    "trading.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the engine and the web process share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- channels ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py's default 5 s socket timeout equals channels-redis's 5 s blocking
                # read, so idle consumers silently drop off: keep it well above.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_timeout": 30,
                        "socket_connect_timeout": 5,
                        "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=1000),
                    }
                ],
                # The default capacity (100) silently drops messages in a burst.
                "capacity": env.int("CHANNEL_CAPACITY", default=2000),
                # Separate deployments (or test workers) sharing one Redis use distinct prefixes.
                "prefix": env.str("CHANNEL_LAYER_PREFIX", default="asgi"),
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- background tasks (django.tasks) ----------------------------------------------------
TASKS_BACKEND = env.str("TASKS_BACKEND", default="immediate")
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks_db.DatabaseBackend"
            if TASKS_BACKEND == "db"
            else "django.tasks.backends.immediate.ImmediateBackend"
        ),
    }
}

# --- auth, i18n, static -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- security (production values when DEBUG is off) -------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["trading.permissions.IsTraderOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "trading.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stocktrader API",
    "DESCRIPTION": "Market data, strategies, backtests, orders and trades.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a "status" field with different choices; name each enum.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "execution.models.OrderStatus",
        "TradeStatusEnum": "execution.models.TradeStatus",
        "BacktestStatusEnum": "execution.models.BacktestStatus",
    },
}

# --- market data ------------------------------------------------------------------------
MARKETDATA_PROVIDER = env.str("MARKETDATA_PROVIDER", default="sample")
TWELVE_DATA_API_KEY = env.str("TWELVE_DATA_API_KEY", default="")
TWELVE_DATA_BASE_URL = env.str("TWELVE_DATA_BASE_URL", default="https://api.twelvedata.com")
TWELVE_DATA_CREDITS_PER_MINUTE = env.int("TWELVE_DATA_CREDITS_PER_MINUTE", default=8)
TWELVE_DATA_CREDITS_PER_DAY = env.int("TWELVE_DATA_CREDITS_PER_DAY", default=800)
TWELVE_DATA_TIMEOUT = env.float("TWELVE_DATA_TIMEOUT", default=20.0)
# What live bars are adjusted for (all, splits, dividends, none); always sent, since the API's
# default differs between daily and intraday series.
TWELVE_DATA_ADJUST = env.str("TWELVE_DATA_ADJUST", default="splits")
SAMPLE_DATA_DIR = Path(env.str("SAMPLE_DATA_DIR", default=str(BASE_DIR / "marketdata" / "sample")))
MARKETDATA_CSV_DIR = Path(env.str("MARKETDATA_CSV_DIR", default=str(BASE_DIR / "data")))

# --- strategies -------------------------------------------------------------------------
# Extra modules scanned for user strategies (comma separated dotted paths).
STRATEGY_MODULES = env.list("STRATEGY_MODULES", default=[])

# --- broker -----------------------------------------------------------------------------
BROKER = env.str("BROKER", default="paper")
PAPER_STARTING_CASH = env.str("PAPER_STARTING_CASH", default="100000")
# No defaults: choosing BROKER=ibkr without them stops start-up (see .env.example).
IBKR_HOST = env.str("IBKR_HOST", default="")
IBKR_PORT = env.int("IBKR_PORT", default=None)
IBKR_CLIENT_ID = env.int("IBKR_CLIENT_ID", default=None)
IBKR_ACCOUNT = env.str("IBKR_ACCOUNT", default="")
IBKR_USERNAME = env.str("IBKR_USERNAME", default="")
IBKR_PASSWORD = env.str("IBKR_PASSWORD", default="")
IBKR_CONNECT_TIMEOUT = env.float("IBKR_CONNECT_TIMEOUT", default=10.0)
# The live bar feed's own API client (run_trader --feed ibkr): never the order client's id,
# so historical-data pacing can never stall or drop the connection orders use.
IBKR_DATA_CLIENT_ID = env.int(
    "IBKR_DATA_CLIENT_ID", default=IBKR_CLIENT_ID + 1 if IBKR_CLIENT_ID is not None else None
)

# --- engine -----------------------------------------------------------------------------
ENGINE_REPLAY_SPEED = env.str("ENGINE_REPLAY_SPEED", default="20")
# Live mode (run_trader --live): seconds after a bar close before the feed is asked for
# the bar, and how long after its close a bar may still be traded (later: stored only).
ENGINE_BAR_DELAY = env.float("ENGINE_BAR_DELAY", default=2.0)
ENGINE_STALE_AFTER = env.float("ENGINE_STALE_AFTER", default=60.0)
ENGINE_HEARTBEAT_STALE_SECONDS = env.int("ENGINE_HEARTBEAT_STALE_SECONDS", default=30)
ENGINE_LOCK_DIR = Path(env.str("ENGINE_LOCK_DIR", default=str(BASE_DIR / ".cache" / "locks")))
RISK_MAX_ORDERS_PER_MINUTE = env.int("RISK_MAX_ORDERS_PER_MINUTE", default=600)
RISK_MAX_OPEN_POSITIONS = env.int("RISK_MAX_OPEN_POSITIONS", default=0)
RISK_MAX_DAILY_LOSS = env.float("RISK_MAX_DAILY_LOSS", default=0.0)
RISK_MAX_POSITION_PCT = env.float("RISK_MAX_POSITION_PCT", default=0.0)

# --- alerts -----------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="stocktrader@localhost")
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=5.0)
ALERT_MAX_ATTEMPTS = env.int("ALERT_MAX_ATTEMPTS", default=3)
ALERT_RETRY_BACKOFF = env.float("ALERT_RETRY_BACKOFF", default=1.0)

# --- logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="DEBUG" if DEBUG else "INFO").upper()
LOG_DIR = Path(env.str("LOG_DIR", default=str(BASE_DIR / "logs")))
LOG_TO_FILE = env.bool("LOG_TO_FILE", default=True)
LOGGING = build_logging(LOG_LEVEL, LOG_DIR, LOG_TO_FILE)
# Values that must never appear in a log line, whatever logged them.
SECRET_VALUES = tuple(v for v in (SECRET_KEY, TWELVE_DATA_API_KEY, IBKR_PASSWORD) if v)

validate(
    {
        "MARKETDATA_PROVIDER": MARKETDATA_PROVIDER,
        "TWELVE_DATA_API_KEY": TWELVE_DATA_API_KEY,
        "BROKER": BROKER,
        "IBKR_HOST": IBKR_HOST,
        "IBKR_PORT": IBKR_PORT,
        "IBKR_CLIENT_ID": IBKR_CLIENT_ID,
        "TASKS_BACKEND": TASKS_BACKEND,
    }
)
