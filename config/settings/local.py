"""Developer and demo settings: the embedded default (SQLite, eager Celery) unless told
otherwise."""

from config.env import env_bool
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("DEBUG", default=True)
