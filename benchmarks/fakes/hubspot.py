"""A fake HubSpot CRM v3 API: contact properties, property groups and contacts batch upsert.

Validation rules follow the public API:

- ``Authorization: Bearer <token>`` is required (``401`` otherwise);
- rate limits: a rolling window (``policyName`` ``TEN_SECONDLY_ROLLING``) and a daily quota
  (``DAILY``) answered with ``429``;
- batch upsert: at most 100 inputs (``400``), no duplicate ids in one batch (``400``), every
  property value a string (``400``), properties must exist (``400``), ``idProperty`` must be
  ``email`` or a property with unique values (``400``);
- per-record problems (invalid email, a number property that is not a number) give ``207``
  with the good records applied and one error per bad record, its ``context`` carrying the
  ``objectWriteTraceId`` (or the ``ids``) of the input.

Faults are injected with :attr:`FakeHubSpot.faults`. Every accepted upsert batch is logged in
:attr:`FakeHubSpot.batches` (list of id lists) so tests can check for duplicate ids and
count what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque

from benchmarks.fakes.server import (
    Fault,
    FaultQueue,
    Request,
    Response,
    json_response,
    sleep_fault,
)

__all__ = ["FakeHubSpot"]

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
PROPERTIES = "/crm/v3/properties/contacts"
GROUPS = "/crm/v3/properties/contacts/groups"
SEARCH = "/crm/v3/objects/contacts/search"
SEARCH_CAP = 10_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)?$|^\d+$")
TYPES = {
    "string": {"text", "textarea", "select", "radio", "phonenumber", "file", "html"},
    "number": {"number", "calculation_equation"},
    "datetime": {"date"},
    "date": {"date"},
    "bool": {"booleancheckbox"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
}


def _error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra) -> Response:
    return json_response(
        status,
        {"status": "error", "message": message, "correlationId": "fake-corr-id",
         "category": category, **extra},
    )


class FakeHubSpot:
    """In-memory HubSpot account (see the module docstring).

    Args:
        token: The only access token accepted.
        window_limit: Requests allowed per rolling window (``None`` = unlimited).
        window_s: Length of the rolling window (real seconds).
        daily_limit: Requests allowed in all (``None`` = unlimited).
        leak_auth_in_errors: Hostile mode: echo the ``Authorization`` header in fault bodies
            (to prove the client redacts what servers send back).
    """

    def __init__(
        self,
        token: str = "fake-token",
        *,
        window_limit: int | None = None,
        window_s: float = 10.0,
        daily_limit: int | None = None,
        leak_auth_in_errors: bool = False,
    ) -> None:
        self.token = token
        self.window_limit = window_limit
        self.window_s = window_s
        self.daily_limit = daily_limit
        self.leak_auth_in_errors = leak_auth_in_errors
        self.faults = FaultQueue()
        self.lock = threading.Lock()
        self.properties: dict[str, dict] = {
            "email": {"name": "email", "label": "Email", "type": "string", "fieldType": "text",
                      "groupName": "contactinformation", "hasUniqueValue": True},
            "firstname": {"name": "firstname", "label": "First name", "type": "string",
                          "fieldType": "text", "groupName": "contactinformation",
                          "hasUniqueValue": False},
        }
        self.groups: dict[str, dict] = {
            "contactinformation": {"name": "contactinformation", "label": "Contact information",
                                   "displayOrder": 0, "archived": False},
        }
        self.contacts: dict[str, dict[str, str]] = {}  # internal id -> properties
        self._unique: dict[str, dict[str, str]] = {"email": {}}  # property -> value -> id
        self._next_id = 1000
        self._stamps: deque[float] = deque()
        self.request_count = 0
        self.upsert_requests = 0
        self.batches: list[list[str]] = []  # ids of every applied upsert batch
        self.rejected_batches: list[tuple[int, str]] = []
        self.on_upsert = None  # optional callback(batch_number) run after a batch is applied
        self.upsert_delay_s = 0.0  # processing time of one upsert call (benchmarks, crash tests)
        self.modified: dict[str, int] = {}  # internal id -> hs_lastmodifieddate (epoch ms)
        self.search_requests: list[dict] = []  # body of every search
        self.on_search = None  # optional callback(search_number) run before a search answers

    # -- state inspection ---------------------------------------------------------------

    def contacts_by(self, prop: str) -> dict[str, dict[str, str]]:
        """Contacts keyed by the value of a unique property (e.g. ``email``)."""
        with self.lock:
            return {
                value: dict(self.contacts[cid]) for value, cid in self._unique.get(prop, {}).items()
            }

    # -- request handling -----------------------------------------------------------------

    def _rate_limited(self) -> Response | None:
        now = time.monotonic()
        with self.lock:
            self.request_count += 1
            if self.daily_limit is not None and self.request_count > self.daily_limit:
                return _error(
                    429, "You have reached your daily limit.", "RATE_LIMITS",
                    errorType="RATE_LIMIT", policyName="DAILY",
                )
            if self.window_limit is not None:
                while self._stamps and self._stamps[0] <= now - self.window_s:
                    self._stamps.popleft()
                if len(self._stamps) >= self.window_limit:
                    response = _error(
                        429, "You have reached your ten_secondly_rolling limit.", "RATE_LIMITS",
                        errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING",
                    )
                    response.headers.update({
                        "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_s * 1000)),
                        "X-HubSpot-RateLimit-Max": str(self.window_limit),
                        "X-HubSpot-RateLimit-Remaining": "0",
                    })
                    return response
                self._stamps.append(now)
        return None

    def _fault(self, request: Request) -> Response | None:
        fault: Fault | None = self.faults.take(request.path)
        if fault is None:
            return None
        if fault.kind == "delay":
            sleep_fault(fault)
            return None
        if fault.kind == "rate_limit":
            response = _error(
                429, f"You have reached your {fault.policy.lower()} limit.", "RATE_LIMITS",
                errorType="RATE_LIMIT", policyName=fault.policy,
            )
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            return response
        body = fault.body
        if self.leak_auth_in_errors:
            body = body[:-1] + f',"echo":"{request.header("authorization")}"}}'
        return Response(fault.status, body.encode(), {"Content-Type": "application/json"})

    def handle(self, request: Request) -> Response:
        """Route one request."""
        if request.header("authorization") != f"Bearer {self.token}":
            return _error(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication.",
                "INVALID_AUTHENTICATION",
            )
        limited = self._rate_limited()
        if limited is not None:
            return limited
        faulted = self._fault(request)
        if faulted is not None:
            return faulted
        path = request.path.rstrip("/")
        if path == UPSERT and request.method == "POST":
            return self._upsert(request)
        if path == SEARCH and request.method == "POST":
            return self._search(request.json())
        if path == GROUPS:
            if request.method == "GET":
                return json_response(200, {"results": list(self.groups.values())})
            if request.method == "POST":
                return self._create_group(request)
        if path.startswith(GROUPS + "/") and request.method == "GET":
            group = self.groups.get(path[len(GROUPS) + 1:])
            if group is None:
                return _error(404, f"Unable to find property group {path[len(GROUPS) + 1:]}",
                              "OBJECT_NOT_FOUND")
            return json_response(200, group)
        if path == PROPERTIES:
            if request.method == "GET":
                with self.lock:
                    return json_response(200, {"results": list(self.properties.values())})
            if request.method == "POST":
                return self._create_property(request)
        if path.startswith(PROPERTIES + "/") and request.method == "GET":
            prop = self.properties.get(path[len(PROPERTIES) + 1:])
            if prop is None:
                return _error(404, "Unable to find property", "OBJECT_NOT_FOUND")
            return json_response(200, prop)
        return _error(404, f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")

    # -- search -------------------------------------------------------------------------------

    def set_contact(self, member_id: str, modified_ms: int, **props: str) -> str:
        """Create or update a contact directly (as a manager would in the UI); return its id."""
        with self.lock:
            index = self._unique.setdefault("corecast_member_id", {})
            cid = index.get(member_id)
            if cid is None:
                cid = str(self._next_id)
                self._next_id += 1
                self.contacts[cid] = {"corecast_member_id": member_id}
                index[member_id] = cid
            self.contacts[cid].update(props)
            self.modified[cid] = int(modified_ms)
            return cid

    def _matches(self, cid: str, filters: list[dict]) -> bool:
        props = self.contacts[cid]
        for f in filters:
            name, op = f["propertyName"], f["operator"]
            if name == "hs_lastmodifieddate":
                value, wanted = self.modified.get(cid, 0), int(f.get("value", 0))
                if (op == "GTE" and value < wanted) or (op == "LTE" and value > wanted):
                    return False
            elif op == "HAS_PROPERTY" and not props.get(name):
                return False
        return True

    def _search(self, body: dict) -> Response:
        """Contacts search: filters, ascending sort on hs_lastmodifieddate, pages of at most
        100 with an ``after`` offset token, and no paging beyond 10,000 results."""
        with self.lock:
            self.search_requests.append(body)
            number = len(self.search_requests)
        if self.on_search is not None:
            self.on_search(number)
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
        if limit > 100:
            return _error(400, "limit may not exceed 100")
        if after + limit > SEARCH_CAP:
            return _error(400, "The search API cannot page beyond 10,000 results.")
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                known = f["propertyName"] in self.properties or f["propertyName"] in (
                    "hs_lastmodifieddate",
                )
                if not known:
                    return _error(400, f"Unknown property {f['propertyName']}")
        with self.lock:
            filters = [f for g in body.get("filterGroups") or [] for f in g["filters"]]
            found = sorted(
                (c for c in self.contacts if self._matches(c, filters)),
                key=lambda c: (self.modified.get(c, 0), int(c)),
            )
            page = found[after:after + limit]
            wanted = body.get("properties") or []
            results = [self._search_result(c, wanted) for c in page]
        payload = {"total": len(found), "results": results}
        if after + limit < len(found):
            payload["paging"] = {"next": {"after": str(after + limit)}}
        return json_response(200, payload)

    def _search_result(self, cid: str, wanted: list[str]) -> dict:
        modified = self.modified.get(cid, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(modified / 1000))
        stamp += f".{modified % 1000:03d}Z"
        props = {k: self.contacts[cid].get(k) for k in wanted}
        props["hs_lastmodifieddate"] = stamp
        return {"id": cid, "properties": props, "updatedAt": stamp, "archived": False}

    def _create_group(self, request: Request) -> Response:
        body = request.json()
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            return _error(400, "name and label are required")
        with self.lock:
            if name in self.groups:
                return _error(409, f"A property group named {name} already exists.",
                              "OBJECT_ALREADY_EXISTS")
            self.groups[name] = {"name": name, "label": label,
                                 "displayOrder": body.get("displayOrder", -1), "archived": False}
            return json_response(201, self.groups[name])

    def _create_property(self, request: Request) -> Response:
        body = request.json()
        required = ("name", "label", "type", "fieldType", "groupName")
        missing = [k for k in required if not body.get(k)]
        if missing:
            return _error(400, f"Missing required fields: {missing}")
        if body["fieldType"] not in TYPES.get(body["type"], set()):
            return _error(400, f"fieldType {body['fieldType']} is not valid for {body['type']}")
        with self.lock:
            if body["groupName"] not in self.groups:
                return _error(400, f"Property group {body['groupName']} does not exist")
            if body["name"] in self.properties:
                return _error(409, f"Property named '{body['name']}' already exists.",
                              "OBJECT_ALREADY_EXISTS")
            prop = {**body, "hasUniqueValue": bool(body.get("hasUniqueValue", False))}
            self.properties[body["name"]] = prop
            if prop["hasUniqueValue"]:
                self._unique[body["name"]] = {}
            return json_response(201, prop)

    def _upsert(self, request: Request) -> Response:
        with self.lock:
            self.upsert_requests += 1
        if self.upsert_delay_s:
            time.sleep(self.upsert_delay_s)
        try:
            body = request.json()
        except ValueError:
            return _error(400, "Invalid input JSON on line 1")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return self._reject(400, "inputs must be a non-empty list")
        if len(inputs) > 100:
            return self._reject(400, f"Batch input size {len(inputs)} exceeds the limit of 100.")
        seen: set[str] = set()
        duplicates: list[str] = []
        for item in inputs:
            id_prop = item.get("idProperty")
            with self.lock:
                unique = id_prop in self._unique
            if not unique:
                return self._reject(
                    400, f"Property {id_prop!r} does not exist or does not have unique values"
                )
            value = item.get("id")
            if not isinstance(value, str) or not value:
                return self._reject(400, "every input needs a string id")
            key = value.lower() if id_prop == "email" else value
            if key in seen:
                duplicates.append(value)
            seen.add(key)
            props = item.get("properties") or {}
            for name, val in props.items():
                if not isinstance(val, str):
                    return self._reject(
                        400, f"Property values must be strings: {name} has {type(val).__name__}"
                    )
                if name not in self.properties:
                    detail = json.dumps([{
                        "isValid": False, "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST", "name": name,
                    }])
                    return self._reject(400, f"Property values were not valid: {detail}")
        if duplicates:
            return self._reject(400, f"Duplicate IDs found in batch input: {duplicates}")
        results, errors = [], []
        with self.lock:
            for item in inputs:
                problem = self._record_problem(item)
                trace = item.get("objectWriteTraceId")
                if problem is not None:
                    context = {"objectWriteTraceId": [trace]} if trace else {"ids": [item["id"]]}
                    errors.append({"status": "error", "category": "VALIDATION_ERROR",
                                   "message": problem, "context": context})
                    continue
                cid, new = self._apply(item)
                result = {"id": cid, "properties": dict(self.contacts[cid]), "new": new,
                          "archived": False, "createdAt": "2024-05-01T00:00:00Z",
                          "updatedAt": "2024-05-01T00:00:00Z"}
                if trace:
                    result["objectWriteTraceId"] = trace
                results.append(result)
            self.batches.append([item["id"] for item in inputs])
            number = len(self.batches)
        if self.on_upsert is not None:
            self.on_upsert(number)
        payload = {"status": "COMPLETE", "results": results,
                   "startedAt": "2024-05-01T00:00:00Z", "completedAt": "2024-05-01T00:00:01Z"}
        if errors:
            payload.update({"numErrors": len(errors), "errors": errors})
            return json_response(207, payload)
        return json_response(200, payload)

    def _reject(self, status: int, message: str) -> Response:
        with self.lock:
            self.rejected_batches.append((status, message))
        return _error(status, message)

    def _record_problem(self, item: dict) -> str | None:
        """Per-record validation (lock held)."""
        if item["idProperty"] == "email" and not EMAIL.match(item["id"]):
            return f"Property values were not valid: Email address {item['id']} is invalid"
        for name, value in (item.get("properties") or {}).items():
            kind = self.properties[name]["type"]
            if value == "":
                continue
            if kind == "number" and not NUMBER.match(value):
                return f"Property values were not valid: {value!r} is not a valid number ({name})"
            if kind in ("datetime", "date") and not DATETIME.match(value):
                return f"Property values were not valid: {value!r} is not a valid date ({name})"
        return None

    def _apply(self, item: dict) -> tuple[str, bool]:
        """Create or update one contact (lock held)."""
        id_prop = item["idProperty"]
        value = item["id"].lower() if id_prop == "email" else item["id"]
        index = self._unique[id_prop]
        cid = index.get(value)
        new = cid is None
        if new:
            cid = str(self._next_id)
            self._next_id += 1
            self.contacts[cid] = {id_prop: value}
            index[value] = cid
        props = self.contacts[cid]
        for name, val in (item.get("properties") or {}).items():
            if name in self._unique and val:
                owner = self._unique[name].get(val)
                if owner is not None and owner != cid:
                    continue  # a unique value held by another contact is not stolen
                self._unique[name][val] = cid
            props[name] = val
        return cid, new
