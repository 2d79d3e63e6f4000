"""A fake Salesforce Bulk API 2.0 ingest endpoint with the real job state machine.

Jobs go ``Open`` → (one CSV upload) → ``UploadComplete`` → ``InProgress`` → ``JobComplete``
(or ``Failed`` when the CSV names a field the object does not have, or ``Aborted``). Each
status read advances a closed job by one step, so clients must poll. Records are upserted by
the external id field: an existing record is updated (``#N/A`` clears a field), a new one needs
``LastName`` (``REQUIRED_FIELD_MISSING`` otherwise). Results are served as CSV:
``successfulResults`` (``sf__Id``, ``sf__Created``, original columns), ``failedResults``
(``sf__Id``, ``sf__Error``, original columns) and ``unprocessedrecords``.
"""

from __future__ import annotations

import csv
import io
import re
import threading

from benchmarks.fakes.server import FaultQueue, Request, Response, json_response, sleep_fault

__all__ = ["FakeSalesforce", "CORECAST_FIELDS"]

CORECAST_FIELDS = {
    "Corecast_Member_Id__c": "text",
    "Corecast_Readiness_Score__c": "number",
    "Corecast_Readiness_Rank__c": "number",
    "Corecast_Disengagement_Score__c": "number",
    "Corecast_Segment__c": "text",
    "Corecast_Action__c": "text",
    "Corecast_Reasons__c": "text",
    "Corecast_Talking_Point__c": "text",
    "Corecast_As_Of__c": "datetime",
    "Corecast_Scored_At__c": "datetime",
    "Corecast_Model_Versions__c": "text",
    "Corecast_Readiness_Method__c": "text",
    "Corecast_Readiness_Validated__c": "text",
    "Corecast_Disengagement_Method__c": "text",
    "Corecast_Disengagement_Validated__c": "text",
}


def _errors(status: int, code: str, message: str) -> Response:
    return json_response(status, [{"errorCode": code, "message": message}])


class FakeSalesforce:
    """In-memory Salesforce org with one object (``Contact``) and Bulk API 2.0 ingest jobs.

    Args:
        token: The only access token accepted.
        api_version: Version in the URL path.
        polls_before_complete: Status reads needed after ``UploadComplete`` before the job is
            processed (the first read shows ``InProgress``).
        fields: Fields of ``Contact`` besides ``Id``, ``LastName`` and ``Email`` (name → kind).
        external_ids: Fields usable as external ids.
    """

    def __init__(
        self,
        token: str = "sf-token",
        *,
        api_version: str = "v62.0",
        polls_before_complete: int = 2,
        fields: dict[str, str] | None = None,
        external_ids: tuple[str, ...] = ("Corecast_Member_Id__c",),
    ) -> None:
        self.token = token
        self.prefix = f"/services/data/{api_version}/jobs/ingest"
        self.polls_before_complete = polls_before_complete
        self.fields = {"LastName": "text", "Email": "text", **(fields or CORECAST_FIELDS)}
        self.external_ids = external_ids
        self.records: dict[str, dict[str, str | None]] = {}  # Id -> fields
        self.jobs: dict[str, dict] = {}
        self.fail_ids: dict[str, str] = {}  # external id -> sf__Error to report
        self.faults = FaultQueue()
        self.lock = threading.RLock()
        self._next = 1
        self.api_version = api_version
        self.tasks: dict[str, dict[str, str | None]] = {}  # Id -> fields (LastModifiedDate ...)
        self.query_batch = 2000  # records per query page
        self.queries: list[str] = []  # every SOQL text received
        self.on_query_page = None  # optional callback(page_number) before a page answers
        self._pages = 0
        self._cursors: dict[str, list[dict]] = {}

    def add_record(self, **fields: str) -> str:
        """Create a record directly (as if it existed in the org); return its Id."""
        with self.lock:
            rid = f"003{self._next:015d}"
            self._next += 1
            self.records[rid] = dict(fields)
            return rid

    def by_external_id(self, field: str = "Corecast_Member_Id__c") -> dict[str, dict]:
        """Records keyed by an external id field."""
        with self.lock:
            return {r[field]: dict(r) for r in self.records.values() if r.get(field)}

    def handle(self, request: Request) -> Response:
        """Route one request."""
        if request.header("authorization") != f"Bearer {self.token}":
            return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
        fault = self.faults.take(request.path)
        if fault is not None:
            if fault.kind == "delay":
                sleep_fault(fault)
            else:
                return Response(fault.status, fault.body.encode(),
                                {"Content-Type": "application/json"})
        path = request.path.rstrip("/")
        query = f"/services/data/{self.api_version}/query"
        if path == query and request.method == "GET":
            return self._soql((request.query.get("q") or [""])[0])
        if path.startswith(query + "/") and request.method == "GET":
            return self._more(path[len(query) + 1:])
        if not path.startswith(self.prefix):
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        rest = path[len(self.prefix):].strip("/").split("/")
        if rest == [""] and request.method == "POST":
            return self._create(request)
        job = self.jobs.get(rest[0])
        if job is None:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1 and request.method == "GET":
            return self._info(job)
        if len(rest) == 1 and request.method == "PATCH":
            return self._patch(job, request.json())
        if rest[1:] == ["batches"] and request.method == "PUT":
            return self._upload(job, request)
        if len(rest) == 2 and request.method == "GET":
            return self._results(job, rest[1])
        return _errors(404, "NOT_FOUND", "The requested resource does not exist")

    # -- SOQL ---------------------------------------------------------------------------------

    def add_task(self, **fields: str | None) -> str:
        """Create or replace a Task (give ``Id`` to replace one); return its Id."""
        with self.lock:
            tid = fields.get("Id") or f"00T{self._next:015d}"
            self._next += 1
            self.tasks[tid] = {**fields, "Id": tid}
            return tid

    def _soql(self, soql: str) -> Response:
        """The two query shapes the pull sends: Tasks by LastModifiedDate, Contacts by Id."""
        with self.lock:
            self.queries.append(soql)
        shape = re.match(r"SELECT (.+?) FROM (\w+) WHERE (.+?)(?: ORDER BY (.+))?$", soql)
        if shape is None:
            return _errors(400, "MALFORMED_QUERY", f"cannot parse {soql!r}")
        fields = [f.strip() for f in shape.group(1).split(",")]
        table, where = shape.group(2), shape.group(3)
        with self.lock:
            if table == "Contact":
                ids = re.findall(r"'([A-Za-z0-9]+)'", where)
                rows = [dict(self.records[i], Id=i) for i in ids if i in self.records]
            elif table == "Task":
                rows = [t for t in self.tasks.values() if self._task_matches(t, where)]
                rows.sort(key=lambda t: (t.get("LastModifiedDate") or "", t["Id"]))
            else:
                return _errors(400, "INVALID_TYPE", f"sObject type '{table}' is not supported")
            rows = [{f: r.get(f) for f in fields} for r in rows]
            return self._page(rows, f"01g{len(self.queries):015d}", 0)

    @staticmethod
    def _task_matches(task: dict, where: str) -> bool:
        for clause in where.split(" AND "):
            name, op, value = clause.split(" ", 2)
            have = task.get(name)
            if value == "null":
                if (op == "!=") == (have in (None, "")):
                    return False
                continue
            if have is None or (op == ">=" and have < value) or (op == "<=" and have > value):
                return False
        return True

    def _page(self, rows: list[dict], locator: str, offset: int) -> Response:
        """One page of a query result (lock held)."""
        self._pages += 1
        if self.on_query_page is not None:
            self.on_query_page(self._pages)
        chunk = rows[offset:offset + self.query_batch]
        body = {"totalSize": len(rows), "done": offset + len(chunk) >= len(rows),
                "records": [{"attributes": {"type": "Task"}, **r} for r in chunk]}
        if not body["done"]:
            self._cursors[locator] = rows
            body["nextRecordsUrl"] = (
                f"/services/data/{self.api_version}/query/{locator}-{offset + len(chunk)}"
            )
        return json_response(200, body)

    def _more(self, token: str) -> Response:
        locator, _, offset = token.rpartition("-")
        with self.lock:
            rows = self._cursors.get(locator)
            if rows is None or not offset.isdigit():
                return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            return self._page(rows, locator, int(offset))

    def _create(self, request: Request) -> Response:
        body = request.json()
        if body.get("object") != "Contact":
            return _errors(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
        if body.get("operation") != "upsert":
            return _errors(400, "INVALIDJOB", "InvalidJob : only upsert is faked")
        ext = body.get("externalIdFieldName")
        if ext not in self.external_ids:
            return _errors(400, "INVALIDJOB", f"InvalidJob : Invalid external id field: {ext}")
        with self.lock:
            job_id = f"750{self._next:015d}"
            self._next += 1
            self.jobs[job_id] = {
                "id": job_id, "operation": "upsert", "object": "Contact",
                "externalIdFieldName": ext, "state": "Open", "contentType": "CSV",
                "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": "COMMA",
                "apiVersion": 62.0, "jobType": "V2Ingest",
                "contentUrl": f"{self.prefix.lstrip('/')}/{job_id}/batches",
                "csv": None, "polls": 0, "ok": [], "ko": [], "left": [], "header": [],
                "errorMessage": None,
            }
            return json_response(200, self._public(self.jobs[job_id]))

    @staticmethod
    def _public(job: dict) -> dict:
        hidden = {"csv", "polls", "ok", "ko", "left", "header"}
        out = {k: v for k, v in job.items() if k not in hidden and v is not None}
        if job["state"] in ("JobComplete", "Failed", "Aborted"):
            out["numberRecordsProcessed"] = len(job["ok"]) + len(job["ko"])
            out["numberRecordsFailed"] = len(job["ko"])
        return out

    def _upload(self, job: dict, request: Request) -> Response:
        with self.lock:
            if job["state"] != "Open":
                return _errors(409, "INVALIDJOBSTATE", f"Job {job['id']} is not Open")
            if job["csv"] is not None:
                return _errors(
                    400, "BULK_API_ERROR",
                    f"Found multiple contents for job: <{job['id']}>, please 'Close' / 'Abort' / "
                    "'Delete' the current Job then create a new Job and make sure you only do "
                    "'PUT' once on a given Job.",
                )
            if "text/csv" not in (request.header("content-type") or ""):
                return _errors(400, "INVALIDCONTENTTYPE", "Content-Type must be text/csv")
            job["csv"] = request.body.decode("utf-8")
        return Response(201)

    def _patch(self, job: dict, body: dict) -> Response:
        wanted = body.get("state")
        with self.lock:
            if wanted == "UploadComplete" and job["state"] == "Open":
                job["state"] = "UploadComplete"
            elif wanted == "Aborted" and job["state"] in ("Open", "UploadComplete", "InProgress"):
                job["state"] = "Aborted"
                job["left"] = self._rows(job)[1] if job["csv"] else []
            else:
                return _errors(400, "INVALIDJOBSTATE",
                               f"Cannot change state from {job['state']} to {wanted}")
            return json_response(200, self._public(job))

    def _info(self, job: dict) -> Response:
        with self.lock:
            if job["state"] == "UploadComplete":
                job["state"] = "InProgress"
            elif job["state"] == "InProgress":
                job["polls"] += 1
                if job["polls"] >= self.polls_before_complete - 1:
                    self._process(job)
            return json_response(200, self._public(job))

    @staticmethod
    def _rows(job: dict) -> tuple[list[str], list[dict[str, str]]]:
        reader = csv.DictReader(io.StringIO(job["csv"] or ""))
        rows = list(reader)
        return list(reader.fieldnames or []), rows

    def _process(self, job: dict) -> None:
        """Apply a job's rows (lock held)."""
        header, rows = self._rows(job)
        job["header"] = header
        if not rows:
            job["state"] = "Failed"
            job["errorMessage"] = "InvalidBatch : no data uploaded"
            return
        unknown = [h for h in header if h not in self.fields and h != "Id"]
        if unknown:
            job["state"] = "Failed"
            job["errorMessage"] = f"InvalidBatch : Field name not found : {unknown[0]}"
            job["left"] = rows
            return
        ext = job["externalIdFieldName"]
        index = {r.get(ext): rid for rid, r in self.records.items() if r.get(ext)}
        for row in rows:
            key = row.get(ext) or ""
            error = self._row_problem(row, key, index)
            if error is not None:
                job["ko"].append(("", error, row))
                continue
            rid = index.get(key)
            created = rid is None
            if created:
                rid = f"003{self._next:015d}"
                self._next += 1
                self.records[rid] = {}
                index[key] = rid
            for name, value in row.items():
                self.records[rid][name] = None if value == "#N/A" else value
            job["ok"].append((rid, "true" if created else "false", row))
        job["state"] = "JobComplete"

    def _row_problem(self, row: dict, key: str, index: dict) -> str | None:
        if not key:
            return f"MISSING_ARGUMENT:{self.external_ids[0]} not specified:--"
        if key in self.fail_ids:
            return self.fail_ids[key]
        if key not in index and not row.get("LastName"):
            return "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:--"
        for name, value in row.items():
            if self.fields.get(name) == "number" and value not in ("", "#N/A"):
                try:
                    float(value)
                except ValueError:
                    return (f"INVALID_TYPE_ON_FIELD_IN_RECORD:{name}: value not of required "
                            f"type: {value}:--")
        return None

    def _results(self, job: dict, which: str) -> Response:
        with self.lock:
            if job["state"] not in ("JobComplete", "Failed", "Aborted"):
                return _errors(400, "INVALIDJOBSTATE", "Job is not in a terminal state")
            header = job["header"] or self._rows(job)[0]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
            if which == "successfulResults":
                writer.writerow(["sf__Id", "sf__Created", *header])
                for rid, created, row in job["ok"]:
                    writer.writerow([rid, created, *[row.get(h, "") for h in header]])
            elif which == "failedResults":
                writer.writerow(["sf__Id", "sf__Error", *header])
                for rid, error, row in job["ko"]:
                    writer.writerow([rid, error, *[row.get(h, "") for h in header]])
            elif which == "unprocessedrecords":
                writer.writerow(header)
                for row in job["left"]:
                    writer.writerow([row.get(h, "") for h in header])
            else:
                return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(200, out.getvalue().encode(), {"Content-Type": "text/csv"})
