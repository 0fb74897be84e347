"""ITSM Events API (seed 004): the directory the default values need.

It is the configuration's `itsm:` section: teams and their members, service instances with
their first line and support teams, the Service Desk team, and request templates with their
workflow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incman.domain.formats.itsm_request import ItsmError, parse_params, ref

_KEYS = ("teams", "service_instances", "service_desk_team", "templates")


@dataclass(frozen=True)
class Team:
    id: int
    name: str
    members: tuple[str | int, ...] = ()

    def has(self, person: Mapping[str, Any] | None) -> bool:
        """Whether a person reference (`{"name", "id"}`) is one of the members."""
        if not person:
            return False
        return any(
            p is not None and p in self.members for p in (person.get("name"), person.get("id"))
        )

    def as_ref(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id}


@dataclass(frozen=True)
class ServiceInstance:
    name: str
    id: int | None = None
    first_line_team: Team | None = None
    support_team: Team | None = None


@dataclass(frozen=True)
class Template:
    """A request template: parameter values the call's own values overwrite, and the
    workflow template it is linked to (`{"id", "subject", "manager"}`), if any."""

    id: int
    params: dict[str, Any] = field(default_factory=dict)
    workflow: dict[str, Any] | None = None


@dataclass(frozen=True)
class Directory:
    teams: tuple[Team, ...] = ()
    service_instances: tuple[ServiceInstance, ...] = ()
    service_desk_team: Team | None = None
    templates: dict[int, Template] = field(default_factory=dict)

    def find_team(self, name: Any = None, ident: Any = None) -> Team | None:
        return next(
            (t for t in self.teams if (ident is not None and t.id == ident) or t.name == name),
            None,
        )

    def team_of(self, person: Mapping[str, Any] | None) -> Team | None:
        """The (first) team the person belongs to."""
        return next((t for t in self.teams if t.has(person)), None)

    def find_service_instance(self, name: Any = None, ident: Any = None) -> ServiceInstance | None:
        return next(
            (
                s
                for s in self.service_instances
                if (ident is not None and s.id == ident) or (name and s.name == name)
            ),
            None,
        )


EMPTY = Directory()


def default_team(
    directory: Directory,
    member: Mapping[str, Any] | None,
    service_instance: ServiceInstance | None,
    user: str,
) -> Team | None:
    """The seed's default team: the member's team; else, for a service instance, its first
    line team — or its support team when it has no first line team or the current user is
    a member of either; else the Service Desk team."""
    team = directory.team_of(member)
    if team is not None:
        return team
    if service_instance is not None:
        first, support = service_instance.first_line_team, service_instance.support_team
        current = {"name": user, "id": None}
        if first is not None and not (first.has(current) or (support and support.has(current))):
            return first
        if support is not None:
            return support
    return directory.service_desk_team


def team_for(
    directory: Directory,
    params: Mapping[str, Any],
    member: Mapping[str, Any] | None,
    service_instance: ServiceInstance | None,
    user: str,
) -> dict[str, Any] | None:
    """The request's team: the one given when the directory knows it (or when it knows no
    teams at all); an unknown one, like none, gets the default team."""
    name, ident = params.get("team"), params.get("team_id")
    if name is None and ident is None:
        team = default_team(directory, member, service_instance, user)
        return team.as_ref() if team else None
    if not directory.teams:
        return ref(name, ident)  # no directory to check the team against
    given = directory.find_team(name, ident)
    if given is not None:
        return given.as_ref()
    team = default_team(directory, member, service_instance, user)
    return team.as_ref() if team else None


def apply_template(
    params: Mapping[str, Any], directory: Directory
) -> tuple[dict[str, Any], Template | None]:
    """The parameters with the template's values under them (the call's values win)."""
    ident = params.get("template_id")
    if ident is None:
        return dict(params), None
    template = directory.templates.get(ident)
    if template is None:
        raise ItsmError("template_id", f"no request template {ident}")
    return {**template.params, **params}, template


# -- the `itsm:` section of the configuration ----------------------------------------------


def _int(raw: Any, where: str, required: bool = True) -> int | None:
    if raw is None and not required:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ValueError(f"{where}: must be a positive integer (a record ID)")
    return raw


def _name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{where}: a name is required")
    return raw


def _team(raw: Any, where: str) -> Team:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with id and name")
    members = raw.get("members") or []
    if not isinstance(members, list) or not all(
        isinstance(m, (str, int)) and not isinstance(m, bool) for m in members
    ):
        raise ValueError(f"{where}.members: a list of e-mail addresses or person ids")
    ident = _int(raw.get("id"), f"{where}.id")
    assert ident is not None
    return Team(ident, _name(raw.get("name"), f"{where}.name"), tuple(members))


def _team_named(teams: tuple[Team, ...], raw: Any, where: str) -> Team | None:
    if raw is None:
        return None
    found = next((t for t in teams if raw in (t.name, t.id)), None)
    if found is None:
        raise ValueError(f"{where}: unknown team {raw!r}")
    return found


def _service_instance(raw: Any, teams: tuple[Team, ...], where: str) -> ServiceInstance:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with a name")
    return ServiceInstance(
        name=_name(raw.get("name"), f"{where}.name"),
        id=_int(raw.get("id"), f"{where}.id", required=False),
        first_line_team=_team_named(teams, raw.get("first_line_team"), f"{where}.first_line_team"),
        support_team=_team_named(teams, raw.get("support_team"), f"{where}.support_team"),
    )


def _template(raw: Any, where: str) -> Template:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping with an id")
    ident = _int(raw.get("id"), f"{where}.id")
    assert ident is not None
    values = {k: v for k, v in raw.items() if k not in ("id", "workflow")}
    if "template_id" in values:
        raise ValueError(f"{where}.template_id: a template cannot name another template")
    try:
        params = parse_params(values)
    except ItsmError as exc:
        raise ValueError(f"{where}.{exc.field}: {exc.reason}") from exc
    workflow = raw.get("workflow")
    if workflow is not None:
        if not isinstance(workflow, dict):
            raise ValueError(f"{where}.workflow: must be a mapping (id, subject, manager)")
        workflow = {
            "id": _int(workflow.get("id"), f"{where}.workflow.id", required=False),
            "subject": workflow.get("subject"),
            "manager": workflow.get("manager"),
        }
    return Template(ident, params, workflow)


def _items(section: Mapping[str, Any], key: str) -> list[Any]:
    items = section.get(key) or []
    if not isinstance(items, list):
        raise ValueError(f"itsm.{key}: must be a list")
    return items


def parse_directory(section: Any) -> Directory:
    """The `itsm:` section of the configuration (None → an empty directory)."""
    if section is None:
        return EMPTY
    if not isinstance(section, dict):
        raise ValueError("itsm: must be a mapping")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ValueError(f"itsm.{unknown[0]}: unknown setting ({', '.join(_KEYS)})")
    teams = tuple(_team(t, f"itsm.teams[{i}]") for i, t in enumerate(_items(section, "teams")))
    instances = tuple(
        _service_instance(s, teams, f"itsm.service_instances[{i}]")
        for i, s in enumerate(_items(section, "service_instances"))
    )
    templates: dict[int, Template] = {}
    for i, raw in enumerate(_items(section, "templates")):
        template = _template(raw, f"itsm.templates[{i}]")
        if template.id in templates:
            raise ValueError(f"itsm.templates[{i}].id: duplicate template {template.id}")
        templates[template.id] = template
    desk = _team_named(teams, section.get("service_desk_team"), "itsm.service_desk_team")
    return Directory(teams, instances, desk, templates)
