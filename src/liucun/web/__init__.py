"""The operator cockpit: server-rendered pages (Jinja2 + htmx + the report's Plotly
figures) over a workspace, with logins, roles and CSRF protection.

``create_cockpit(ws)`` returns a FastAPI app that the service mounts at ``/cockpit``;
every asset it needs is served by the app itself, so it works with no network.
Logins live in the state table ``web_users`` (``liucun -w WS web-users add NAME --role
operator``).
"""

from liucun.web._app import create_cockpit
from liucun.web._customer import Started, customer_360, start_journey
from liucun.web._figures import KpiTile, kpi_tiles, report_context, status_of
from liucun.web._graph import journey_svg
from liucun.web._i18n import MESSAGES, choose_language, translate
from liucun.web._service import COCKPIT_PATH, create_service, service_from_environment
from liucun.web._users import (
    LANGUAGES,
    PERMISSIONS,
    ROLES,
    WebUserPublic,
    check_password,
    create_web_user,
    get_web_user,
    hash_password,
    list_web_users,
    update_web_user,
    verify_password,
)

__all__ = [
    "COCKPIT_PATH",
    "LANGUAGES",
    "MESSAGES",
    "PERMISSIONS",
    "ROLES",
    "KpiTile",
    "Started",
    "WebUserPublic",
    "check_password",
    "choose_language",
    "create_cockpit",
    "create_service",
    "create_web_user",
    "customer_360",
    "get_web_user",
    "hash_password",
    "journey_svg",
    "kpi_tiles",
    "list_web_users",
    "report_context",
    "service_from_environment",
    "start_journey",
    "status_of",
    "translate",
    "update_web_user",
    "verify_password",
]
