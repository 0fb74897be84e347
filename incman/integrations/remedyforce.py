"""BMC Remedyforce: incidents as Salesforce records through the Salesforce REST API.

Incidents (`BMCServiceDesk__Incident__c`) are created by an upsert on an External ID field
holding the correlation key, so a retried create never makes a second incident. OAuth 2 bearer
tokens come from the token endpoint (password grant, the security token appended to the
password, or client credentials); a 401 INVALID_SESSION_ID logs in again, once. Status,
urgency, impact, category, client and owner are references to records: fields may name them (a
status or urgency by Name, a user by Username), the plugin looks the Ids up with SOQL and keeps
them for the instance's life. Notes are IncidentHistory records with the "Notes" action. 403
REQUEST_LIMIT_EXCEEDED (the org's API quota) is transient: retried after `limit_backoff`
seconds, never dead-lettered at once. (the upsert's answers: docs/remote-systems.md)"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from incman.domain.mapping_context import MappingUtils
from incman.integrations.base import (
    ALL_CAPABILITIES,
    INCIDENT_STATES,
    Integration,
    RemoteIncident,
)
from incman.integrations.config import IntegrationConfig, setting, url_setting
from incman.integrations.errors import IntegrationError, PermanentError, TransientError
from incman.integrations.http import HttpClient

log = logging.getLogger(__name__)

INCIDENT = "BMCServiceDesk__Incident__c"
HISTORY = "BMCServiceDesk__IncidentHistory__c"
STATUS_NAME, OPEN_FLAG = "BMCServiceDesk__Status_ID__c", "BMCServiceDesk__state__c"
# reference fields that may be given by name: field → (object, the field matched)
LOOKUPS = {
    "BMCServiceDesk__FKStatus__c": ("BMCServiceDesk__Status__c", "Name"),
    "BMCServiceDesk__FKUrgency__c": ("BMCServiceDesk__Urgency__c", "Name"),
    "BMCServiceDesk__FKImpact__c": ("BMCServiceDesk__Impact__c", "Name"),
    "BMCServiceDesk__FKCategory__c": ("BMCServiceDesk__Category__c", "Name"),
    "BMCServiceDesk__FKClient__c": ("User", "Username"),
    "OwnerId": ("User", "Username"),
}
RECORD_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
STATUS_CHUNK = 200
SUMMARY_MAX = 255
LEVELS = {"5": "HIGH", "4": "HIGH", "3": "MEDIUM", "2": "LOW", "1": "LOW", "0": "LOW"}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _is_id(value: str) -> bool:
    return bool(RECORD_ID.match(value)) and any(c.isdigit() for c in value)


def _soql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json(resp: requests.Response) -> Any:
    """The answer's JSON (None when empty); an answer that is not JSON is permanent."""
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError as exc:
        raise PermanentError(f"remedyforce: {resp.request.method} {resp.url}: not JSON") from exc


def _states(value: dict[str, str]) -> str | None:
    bad = sorted(v for v in value.values() if v not in INCIDENT_STATES)
    return f"states must be among {', '.join(INCIDENT_STATES)}, not {bad[0]}" if bad else None


class RemedyforceConfig(IntegrationConfig):
    """BMC Remedyforce on Salesforce (OAuth 2, External ID upsert)."""

    url: str = url_setting(
        required=True, help="the org's My Domain address (https://acme.my.salesforce.com)"
    )
    login_url: str = url_setting(help="where tokens come from (default: url)")
    grant: str = setting(
        "password", choices=("password", "client_credentials"), help="the OAuth grant"
    )
    client_id: str = setting("", required=True, help="the connected app's consumer key")
    client_secret: str = setting("", required=True, secret=True, help="its consumer secret")
    username: str = setting("", help="the API user (grant password)")
    password: str = setting("", secret=True, help="its password")
    security_token: str = setting("", secret=True, help="its security token (appended)")
    api_version: str = setting(
        "v59.0",
        check=lambda v: None if re.fullmatch(r"v\d{2,3}\.0", v) else "must look like v59.0",
        help="the REST API version",
    )
    external_id_field: str = setting(
        "incman_Key__c",
        required=True,
        check=lambda v: None if v.endswith("__c") else "must be a custom field (…__c)",
        help="the External ID field of incidents holding the correlation key",
    )
    open_status: str = setting("OPENED", required=True, help="status of new incidents")
    close_status: str = setting("CLOSED", required=True, help="status a close sets")
    reopen_status: str = setting("OPENED", required=True, help="status a re-open sets")
    assigned_status: str = setting("", help="status an assign sets (default: unchanged)")
    status_map: dict[str, str] = setting(
        {}, check=_states, help="status name → OPEN/ASSIGNED/RESOLVED/CLOSED (added)"
    )
    urgency_map: dict[str, str] = setting(LEVELS, help="event severity → urgency name")
    impact_map: dict[str, str] = setting(LEVELS, help="event severity → impact name")
    category: str = setting("", help="category name of new incidents")
    client: str = setting("", help="Username of the client of new incidents")
    note_action: str = setting("Notes", required=True, help="the action name of notes")
    resolution: str = setting("", help="resolution text sent on close (default: the note)")
    user_map: dict[str, str] = setting({}, help="incman user → Salesforce Username")
    limit_backoff: float = setting(
        60.0, above=0, help="seconds to wait when the org's API request limit is used up"
    )

    def check(self) -> Iterator[tuple[str, str]]:
        if self.grant == "password" and not (self.username and self.password):
            yield "password", "the password grant needs username and password"


class RemedyforceIntegration(Integration[RemedyforceConfig]):
    name = "remedyforce"
    capabilities = ALL_CAPABILITIES
    # Remedyforce status names (config status_map adds to it); a closed incident can be
    # re-opened there, so CLOSED is RESOLVED here, not final
    status_map: ClassVar[dict[str, str]] = {
        "OPENED": "OPEN",
        "ASSIGNED": "ASSIGNED",
        "IN PROGRESS": "ASSIGNED",
        "PENDING": "OPEN",
        "RESOLVED": "RESOLVED",
        "CLOSED": "RESOLVED",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids: dict[tuple[str, str], str] = {}  # (object, name) → record Id
        self.me = ""  # the API user's Id, from the token answer

    # -- login ---------------------------------------------------------------------------------
    def auth(self, session: HttpClient) -> None:
        cfg = self.cfg
        form = {"grant_type": cfg.grant, "client_id": cfg.client_id}
        form["client_secret"] = cfg.client_secret
        if cfg.grant == "password":
            form.update(username=cfg.username, password=cfg.password + cfg.security_token)
        token_url = f"{cfg.login_url or cfg.url}/services/oauth2/token"
        answer = session.json("POST", token_url, data=form, headers={"Authorization": None})
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise PermanentError("remedyforce: the token endpoint answered no access_token")
        self.me = _text(answer.get("id")).rstrip("/").rsplit("/", 1)[-1]
        session.use_header("Authorization", f"Bearer {answer['access_token']}")

    def auth_expired(self, error: IntegrationError) -> bool:
        # 401 INVALID_SESSION_ID: the session timed out or was revoked. No logout on
        # shutdown: sessions end by their timeout, and revoking one could end another
        # worker's if the org hands the same token out again.
        return error.status == 401

    def call_budget(self) -> float:
        return 3 * super().call_budget()  # a create: lookups, the upsert, a read

    def map_state(self, remote_state: str) -> str:
        name = str(remote_state)
        return self.cfg.status_map.get(name) or self.status_map.get(name, "OPEN")

    # -- mapping ----------------------------------------------------------------------------
    def default_fields(
        self, event: dict[str, Any], device: dict[str, Any] | None, urls: dict[str, str]
    ) -> dict[str, Any]:
        cfg, sev = self.cfg, str(event.get("severity", 3))
        fields: dict[str, Any] = {
            "BMCServiceDesk__shortDescription__c": _text(event.get("summary"))[:SUMMARY_MAX],
            "BMCServiceDesk__incidentDescription__c": MappingUtils(urls).getDescription(event),
            "BMCServiceDesk__FKUrgency__c": cfg.urgency_map.get(sev, "LOW"),
            "BMCServiceDesk__FKImpact__c": cfg.impact_map.get(sev, "LOW"),
            "BMCServiceDesk__FKStatus__c": cfg.open_status,
        }
        if cfg.category:
            fields["BMCServiceDesk__FKCategory__c"] = cfg.category
        if cfg.client:
            fields["BMCServiceDesk__FKClient__c"] = cfg.client
        return fields

    def _ref(self, record: dict[str, Any]) -> RemoteIncident:
        status = _text(record.get(STATUS_NAME))
        mapped = self.map_state(status) if status else "OPEN"
        if status and status not in self.status_map and status not in self.cfg.status_map:
            mapped = "OPEN" if record.get(OPEN_FLAG) else "RESOLVED"  # an org's own status
        owner = record.get("Owner")
        owner = owner if isinstance(owner, dict) else {}
        mine = _text(record.get("OwnerId"))[:15] == self.me[:15]
        assignee = "" if mine else _text(owner.get("Username"))
        return RemoteIncident(
            remote_id=_text(record.get("Id")),
            number=_text(record.get("Name")),
            url=f"{self.cfg.url}/{_text(record.get('Id'))}",
            state="ASSIGNED" if mapped == "OPEN" and assignee else mapped,
            remote_state=status,
            assignee=assignee,
        )

    # -- requests ---------------------------------------------------------------------------
    def _api(self, path: str) -> str:
        return f"{self.cfg.url}/services/data/{self.cfg.api_version}/{path}"

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One API call; the org's used-up request limit is transient, not permanent."""
        url = path if path.startswith("http") else self._api(path)
        try:
            return self.http.request(method, url, **kwargs)
        except PermanentError as exc:
            if exc.status == 403 and "REQUEST_LIMIT_EXCEEDED" in str(exc):
                raise TransientError(
                    f"remedyforce: the org's API request limit is used up: {exc}",
                    self.cfg.limit_backoff,
                    status=403,
                ) from exc
            raise

    def _query(self, soql: str) -> list[dict[str, Any]]:
        """Every record the SOQL query matches, following nextRecordsUrl."""
        records: list[dict[str, Any]] = []
        answer = _json(self._call("GET", "query", params={"q": soql}))
        while True:
            if not isinstance(answer, dict):
                raise PermanentError("remedyforce: a query answered no records")
            records += [r for r in answer.get("records", []) if isinstance(r, dict)]
            following = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not following:
                return records
            answer = _json(self._call("GET", f"{self.cfg.url}{following}"))

    def _incidents(self, where: str) -> list[dict[str, Any]]:
        fields = f"Id, Name, {STATUS_NAME}, {OPEN_FLAG}, OwnerId, Owner.Username"
        return self._query(
            f"SELECT {fields}, {self.cfg.external_id_field} FROM {INCIDENT} WHERE {where}"
        )

    def _id_of(self, sobject: str, match: str, name: str) -> str:
        """The Id of the record of `sobject` whose `match` field is `name`, looked up once."""
        key = (sobject, name)
        if key not in self._ids:
            found = self._query(
                f"SELECT Id FROM {sobject} WHERE {match} = {_soql_text(name)} LIMIT 2"
            )
            if not found:
                raise PermanentError(f"remedyforce: no {sobject} with {match} {name!r}")
            if len(found) > 1:
                log.warning("remedyforce: several %s named %r: taking the first", sobject, name)
            self._ids[key] = _text(found[0].get("Id"))
        return self._ids[key]

    def _resolved(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The fields with reference names turned into record Ids."""
        out: dict[str, Any] = {}
        for name, value in fields.items():
            text = _text(value)
            if name in LOOKUPS and text and not _is_id(text):
                sobject, match = LOOKUPS[name]
                if sobject == "User":
                    text = self.cfg.user_map.get(text, text)
                out[name] = self._id_of(sobject, match, text)
            else:
                out[name] = value
        return out

    def _patch(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        self._call("PATCH", f"sobjects/{INCIDENT}/{ref.remote_id}", json=self._resolved(fields))

    def _one(self, where: str) -> RemoteIncident | None:
        found = self._incidents(where)
        return self._ref(found[0]) if found else None

    # -- the contract --------------------------------------------------------------------------
    def create(self, fields: dict[str, Any], correlation_key: str) -> RemoteIncident:
        """The upsert on the External ID: a retry updates the incident the first made."""
        ext = self.cfg.external_id_field
        body = {k: v for k, v in self._resolved(fields).items() if k not in (ext, "Id")}
        path = f"sobjects/{INCIDENT}/{ext}/{quote(correlation_key, safe='')}"
        resp = self._call("PATCH", path, json=body)
        if resp.status_code == 300:
            raise PermanentError(
                f"remedyforce: several incidents carry {ext} {correlation_key}", status=300
            )
        answer = _json(resp)
        record_id = _text(answer.get("id")) if isinstance(answer, dict) else ""
        if resp.status_code == 200 or (isinstance(answer, dict) and answer.get("created") is False):
            log.info("remedyforce: %s %s existed: updated", ext, correlation_key)
        where = f"Id = {_soql_text(record_id)}" if record_id else self._key_is(correlation_key)
        ref = self._one(where)
        if ref is None:
            raise TransientError(f"remedyforce: the incident of {correlation_key} is not readable")
        return ref

    def _key_is(self, key: str) -> str:
        return f"{self.cfg.external_id_field} = {_soql_text(key)}"

    def find(self, correlation_key: str) -> RemoteIncident | None:
        return self._one(self._key_is(correlation_key))

    def find_by_number(self, number: str) -> RemoteIncident | None:
        wanted = number.strip()
        return self._one(f"Name = {_soql_text(wanted)}") if wanted else None

    def update(self, ref: RemoteIncident, fields: dict[str, Any]) -> None:
        if fields:
            self._patch(ref, fields)

    def add_note(self, ref: RemoteIncident, text: str) -> None:
        action = self._id_of("BMCServiceDesk__Action__c", "Name", self.cfg.note_action)
        note = {
            "BMCServiceDesk__FKIncident__c": ref.remote_id,
            "BMCServiceDesk__FKAction__c": action,
            "BMCServiceDesk__note__c": text,
        }
        self._call("POST", f"sobjects/{HISTORY}", json=note)

    def assign(self, ref: RemoteIncident, assignee: str) -> None:
        """The owner, a user given by Username (user_map maps incman users)."""
        if not assignee:
            raise PermanentError(f"remedyforce: no assignee given for {ref.number}")
        fields: dict[str, Any] = {"OwnerId": assignee}
        if self.cfg.assigned_status:
            fields["BMCServiceDesk__FKStatus__c"] = self.cfg.assigned_status
        self._patch(ref, fields)

    def close(self, ref: RemoteIncident, note: str) -> None:
        self._patch(
            ref,
            {
                "BMCServiceDesk__FKStatus__c": self.cfg.close_status,
                "BMCServiceDesk__incidentResolution__c": self.cfg.resolution
                or note
                or "Closed by incman",
            },
        )

    def reopen(self, ref: RemoteIncident, note: str) -> None:
        self._patch(ref, {"BMCServiceDesk__FKStatus__c": self.cfg.reopen_status})
        if note:
            self.add_note(ref, note)

    def get_status(self, refs: list[RemoteIncident]) -> dict[str, RemoteIncident]:
        ids = list(dict.fromkeys(r.remote_id for r in refs if _is_id(r.remote_id)))
        out: dict[str, RemoteIncident] = {}
        for start in range(0, len(ids), STATUS_CHUNK):
            chunk = ids[start : start + STATUS_CHUNK]
            listed = ", ".join(_soql_text(i) for i in chunk)
            for record in self._incidents(f"Id IN ({listed})"):
                ref = self._ref(record)
                if ref.remote_id in chunk:
                    out[ref.remote_id] = ref
        return out
