"""Django settings for the local Label Studio that builder starts: Label Studio's own, plus one guard.

This file runs INSIDE Label Studio's process (its virtual environment, its Python), never in builder's: `builder
server start` puts this folder on the server's PYTHONPATH and names this module in DJANGO_SETTINGS_MODULE (Label
Studio's `server.py` only sets that variable when it is unset). It imports nothing from builder.

Why a guard: Label Studio Community keeps organizations apart in most of its views (project lists, tasks, users
are filtered by the user's active organization), but its permission check on objects is
`Project.has_permission`, which in 1.23.2 only refuses a revoked membership ("LSO always runs a single
organization"). Views that fetch an object by its id from `Model.objects.all()` (`/api/annotations/ID`,
`/api/drafts/ID`, `/api/dm/actions?project=ID`, exports, storages, ...) therefore answer anyone logged in. Blind
annotation puts each annotator in an organization of their own, so the guard below answers 404 whenever a
request names (in its path, its query or its JSON body) an object that belongs to another organization than the
requesting user's active one. It fails closed: an id-like URL argument it does not know is refused too.

It also answers a request of its own, ISOLATE_PATH, for builder's admin token only: moving annotator accounts
into organizations of their own inside the running server (a blind push did this by starting Django in a process
of its own, which costs 10 s or more; here it costs a few database writes). See `_isolate`. And a second,
ADD_PATH, for builder's admin token only too: making a blind copy's tasks as Label Studio's import would, in a few
statements (`add_tasks`). And a third, EXPORT_PATH, for builder's admin token only: a page of a blind copy's tasks
with what a full pull reads of Label Studio's export (`export_tasks`).
"""

import json
import os

# Label Studio's settings read `django.conf.settings` while they are being imported (Sentry's set-up): Django then
# loads the module DJANGO_SETTINGS_MODULE names, half-imported. Naming Label Studio's own module meanwhile gives it
# the half it expects; this module is named again once they are imported.
os.environ["DJANGO_SETTINGS_MODULE"] = "label_studio.core.settings.label_studio"
from label_studio.core.settings.label_studio import *  # noqa: E402,F401,F403 -- Label Studio's settings, unchanged
from label_studio.core.settings.label_studio import MIDDLEWARE  # noqa: E402

os.environ["DJANGO_SETTINGS_MODULE"] = __name__

MIDDLEWARE = [*MIDDLEWARE, "builder_guard_settings.OrganizationGuard"]

# SQLite in write-ahead-log mode, synced at checkpoints (Label Studio keeps SQLite's defaults: a rollback journal,
# synced at every commit). Label Studio commits a dozen times or more per saved annotation, and a synced commit of
# the rollback journal cost 18 ms on the disk here (0.03 ms in WAL mode with synchronous=NORMAL, 3 ms with FULL):
# saving an annotation took 0.37 s, 0.16 s in WAL mode, and `builder run` on the sample 59 s, 29 s. In WAL mode a
# crash of Label Studio or of the machine never corrupts the database, and with NORMAL a commit survives any crash
# of Label Studio; only a power failure or a crash of the operating system may undo the last commits before a
# checkpoint. BUILDER_SQLITE_SYNCHRONOUS=full (set where `builder server start` runs) syncs every commit.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405 -- from Label Studio's settings
    _synchronous = os.environ.get("BUILDER_SQLITE_SYNCHRONOUS", "NORMAL")
    DATABASES["default"].setdefault("OPTIONS", {})["init_command"] = (  # noqa: F405
        f"PRAGMA journal_mode=WAL; PRAGMA synchronous={'FULL' if _synchronous == 'FULL' else 'NORMAL'}"
    )

GUARD_HEADER = "X-Builder-Organization-Guard"  # on every answer: `builder` checks a server runs the guard
BODY_LIMIT = 1 << 20  # JSON bodies up to 1 MiB are read for project/task/view ids (imports name their project)
ISOLATE_PATH = "/builder-guard/isolate-annotators/"  # ends in a slash: no APPEND_SLASH redirect of a POST
ISOLATE_HEADER = "X-Builder-Isolate"  # on every answer to ISOLATE_PATH: builder tells it from Label Studio's own
ADD_PATH = "/builder-guard/add-tasks/"  # a blind copy's tasks, made as Label Studio's import makes them (`add_tasks`)
ADD_HEADER = "X-Builder-Add"  # on every answer to ADD_PATH
ADD_LIMIT = 10_000  # tasks per add request
ADD_BODY_LIMIT = 64 << 20  # bytes of an add request
PREDICTION_KEYS = {"result", "score", "model_version"}  # what builder's tasks' predictions hold
EXPORT_PATH = "/builder-guard/export-tasks/"  # a blind copy's tasks as a full pull reads them (`export_tasks`)
EXPORT_HEADER = "X-Builder-Export"  # on every answer to EXPORT_PATH
EXPORT_LIMIT = 1_000  # tasks per export request (a page: builder holds one, parsed, at a time)
ADMIN_DOMAIN = "builder.local"  # the organizations' admins builder makes (builder/labelstudio/isolation.py)

# What an object id names, by the URL's first segments (most specific first), and how its organization is read.
_PREFIXES = (
    ("api/projects/", "project"),
    ("projects/", "project"),
    ("api/tasks/", "task"),
    ("tasks/", "task"),
    ("api/annotations/", "annotation"),
    ("api/drafts/", "draft"),
    ("api/predictions/", "prediction"),
    ("api/dm/views/", "view"),
    ("api/import/file-upload/", "fileupload"),
    ("api/ml/", "mlbackend"),
    ("api/webhooks/", "webhook"),
    ("api/organizations/", "organization"),
    ("api/users/", "user"),
    ("api/labels/", "label"),
    ("api/label_links/", "labellink"),
    ("api/storages/", "storage"),
)
_CHILD_KWARGS = {
    "task_id": "task",
    "project_id": "project",
    "annotation_id": "annotation",
    "import_pk": "projectimport",
    "reimport_pk": "projectreimport",
    "export_pk": "export",
    "user_pk": "user",
}
_QUERY_KEYS = {
    "project": "project",
    "task": "task",
    "view": "view",
    "annotation": "annotation",
    "task__project": "project",
}
_FSM_ENTITIES = {"task": "task", "annotation": "annotation", "project": "project"}
_NOT_IDS = {"format", "path", "sub_path", "action_id", "filename", "entity_name", "transition_name"}


def _model_path(kind):
    """(model, lookup of its organization id) for a kind of object; imported late (apps are loaded then)."""
    from data_export.models import Export
    from data_import.models import FileUpload
    from data_manager.models import View
    from labels_manager.models import Label, LabelLink
    from ml.models import MLBackend
    from organizations.models import Organization
    from projects.models import Project, ProjectImport, ProjectReimport
    from tasks.models import Annotation, AnnotationDraft, Prediction, Task
    from webhooks.models import Webhook

    return {
        "project": (Project, "organization_id"),
        "task": (Task, "project__organization_id"),
        "annotation": (Annotation, "task__project__organization_id"),
        "draft": (AnnotationDraft, "task__project__organization_id"),
        "prediction": (Prediction, "task__project__organization_id"),
        "view": (View, "project__organization_id"),
        "fileupload": (FileUpload, "project__organization_id"),
        "mlbackend": (MLBackend, "project__organization_id"),
        "webhook": (Webhook, "organization_id"),
        "organization": (Organization, "id"),
        "label": (Label, "organization_id"),
        "labellink": (LabelLink, "project__organization_id"),
        "projectimport": (ProjectImport, "project__organization_id"),
        "projectreimport": (ProjectReimport, "project__organization_id"),
        "export": (Export, "project__organization_id"),
    }.get(kind)


def _as_id(value):
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


class OrganizationGuard:
    """404 for any request naming an object outside the requesting user's active organization."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info == ISOLATE_PATH:
            response = _isolate(request)
            response[ISOLATE_HEADER] = "1"
        elif request.path_info == ADD_PATH:
            response = _add(request)
            response[ADD_HEADER] = "1"
        elif request.path_info == EXPORT_PATH:
            response = _export(request)
            response[EXPORT_HEADER] = "1"
        else:
            response = self._refusal(request) or self.get_response(request)
        response[GUARD_HEADER] = "1"
        return response

    def _refusal(self, request):
        from django.http import Http404, HttpResponseForbidden, HttpResponseNotFound, JsonResponse
        from django.urls import Resolver404, resolve

        try:
            match = resolve(request.path_info)
        except (Resolver404, Http404):
            return None
        route = str(match.route or "").replace("^", "").replace("$", "")  # router routes are regexes
        if route.startswith("admin/") or route.startswith("django-rq/"):
            return None  # staff only (Label Studio checks is_staff); builder never makes staff accounts
        claims = self._claims(request, match, route)
        if not claims:
            return None
        user = self._user(request)
        if user is None:
            return None  # not logged in: Label Studio's own answer (401/403 or the login page)
        organization = user.active_organization_id
        if organization is None:  # removed from every organization: refused, as Label Studio refuses them
            if route.startswith("api/"):
                return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
            return HttpResponseForbidden("Forbidden")
        if all(self._inside(kind, pk, organization, user) for kind, pk in claims):
            return None
        if route.startswith("api/"):
            return JsonResponse({"detail": "Not found."}, status=404)
        return HttpResponseNotFound("Not found")

    @staticmethod
    def _claims(request, match, route):
        """(kind, id) of every object the request names; ("unknown", id) for an id the guard cannot place."""
        claims = []
        kind_of_pk = next((kind for prefix, kind in _PREFIXES if route.startswith(prefix)), "unknown")
        # Only what the URL itself names: a route's own extra kwargs (the static, react-app and dm routes pass
        # `serve` a `document_root` and `show_indexes`) come from the URL configuration, not from the request, and
        # Django merges them into `match.kwargs` (where they win over a capture of the same name).
        fixed = match.extra_kwargs or {}
        for name, value in match.kwargs.items():
            if name in _NOT_IDS or name in fixed:
                continue
            if name == "entity_id":
                kind = _FSM_ENTITIES.get(match.kwargs.get("entity_name"), "unknown")
            else:
                kind = kind_of_pk if name == "pk" else _CHILD_KWARGS.get(name, "unknown")
            if kind == "storage":
                kind = ("storage", match.func)
            claims.append((kind, _as_id(value)))
        for key, kind in _QUERY_KEYS.items():
            for value in request.GET.getlist(key):
                claims.append((kind, _as_id(value)))
        content_type = request.META.get("CONTENT_TYPE", "")
        length = _as_id(request.META.get("CONTENT_LENGTH")) or 0
        if content_type.startswith("application/json") and 0 < length <= BODY_LIMIT:
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                body = None
            if isinstance(body, dict):
                for key, kind in _QUERY_KEYS.items():
                    if key in body and not isinstance(body[key], (dict, list)):
                        claims.append((kind, _as_id(body[key])))
        return claims

    @staticmethod
    def _user(request):
        """The requesting user: the session's, else the one an API token (or JWT) names, as DRF would find it."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return _token_user(request)

    @staticmethod
    def _inside(kind, pk, organization, user):
        if pk is None:
            return kind != "unknown"  # not a number: the view refuses it itself
        if kind == "unknown":
            return False
        if kind == "user":
            from organizations.models import OrganizationMember

            return (
                pk == user.pk
                or OrganizationMember.objects.filter(
                    user_id=pk, organization_id=organization, deleted_at__isnull=True
                ).exists()
            )
        if isinstance(kind, tuple):  # a storage: the model its view serves
            view_class = getattr(kind[1], "cls", None) or getattr(kind[1], "view_class", None)
            queryset = getattr(view_class, "queryset", None)
            if queryset is None:
                return False
            model, lookup = queryset.model, "project__organization_id"
        else:
            model, lookup = _model_path(kind)
        owners = list(model.objects.filter(pk=pk).values_list(lookup, flat=True)[:1])
        return not owners or owners[0] == organization  # a missing object: Label Studio's own 404


def _token_user(request):
    """The user an API token (or JWT) in the Authorization header names; never the session's (no CSRF way in)."""
    if not request.META.get("HTTP_AUTHORIZATION"):
        return None
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    for authenticator_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authenticator_class, SessionAuthentication):
            continue
        try:
            found = authenticator_class().authenticate(Request(request))
        except Exception:  # refused credentials
            continue
        if found:
            return found[0]
    return None


def _json_body(request, limit: int = BODY_LIMIT):
    """The request's JSON body, decoded; None unless it is declared JSON, of 1 to `limit` bytes, and parses."""
    length = _as_id(request.META.get("CONTENT_LENGTH")) or 0
    if not request.META.get("CONTENT_TYPE", "").startswith("application/json") or not 0 < length <= limit:
        return None
    try:
        return json.loads(request.body)
    except ValueError:
        return None


def _answer(work):
    """The JSON answer `work()` gives, or its refusal (GuardRefused: its status and reason), or 500 naming an
    unexpected error; a request that fails makes nothing (its transaction is rolled back)."""
    from django.http import JsonResponse

    try:
        return JsonResponse(work())
    except GuardRefused as refused:
        return JsonResponse({"detail": refused.detail}, status=refused.status)
    except Exception as error:  # fails closed
        return JsonResponse({"detail": f"{type(error).__name__}: {str(error)[:200]}"}, status=500)


def _entries(request):
    """The accounts to move, from the JSON body; None unless every entry is well formed and names an admin of
    ADMIN_DOMAIN (so no other account's token can be set through this path)."""
    entries = _json_body(request)
    fields = ("email", "admin", "token", "title")
    if not isinstance(entries, list) or not entries:
        return None
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != set(fields):
            return None
        if not all(isinstance(entry[name], str) and entry[name] for name in fields):
            return None
        if not entry["admin"].endswith(f"@{ADMIN_DOMAIN}") or entry["email"].endswith(f"@{ADMIN_DOMAIN}"):
            return None
        if len(entry["token"]) < 20:
            return None
    return entries


class MoveRefused(Exception):
    """An account `move_accounts` will not move; nothing moved. `status`: the HTTP status the guard answers."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def move_accounts(entries: list[dict]) -> dict[str, int]:
    """Move each annotator account `entries` names into an organization of its own, whose admin (made here, with
    the token builder chose and no usable password) builder keeps; {e-mail: organization id}. One transaction: all
    accounts move, or none (MoveRefused for a missing account, or one that is staff or superuser: builder never
    moves those). The guard's request runs it in the server; builder/labelstudio/isolation.py runs it in a Django
    process of its own for a server whose guard predates that request."""
    from django.db import transaction
    from organizations.models import Organization, OrganizationMember
    from rest_framework.authtoken.models import Token
    from users.models import User

    made = {}
    with transaction.atomic():  # an exception rolls everything back
        for entry in entries:
            annotator = User.objects.filter(email=entry["email"]).first()
            if annotator is None:
                raise MoveRefused(409, "missing account")
            if annotator.is_superuser or annotator.is_staff:
                raise MoveRefused(400, "not an annotator account")
            # the admin has no usable password: nobody logs in as it, builder acts through its token (and a
            # password's hash, a million PBKDF2 rounds, was most of what a move cost)
            admin = User.objects.filter(email=entry["admin"]).first()
            if admin is None:
                admin = User.objects.create_user(email=entry["admin"], password=None, username=entry["admin"])
            else:  # made by an earlier, interrupted move (or an older builder, with a password): none now
                admin.set_unusable_password()
            organization = admin.active_organization
            if organization is None or organization.created_by_id != admin.id:
                organization = Organization.create_organization(created_by=admin, title=entry["title"])
                admin.active_organization = organization
            admin.save()
            Token.objects.filter(user=admin).delete()
            Token.objects.create(user=admin, key=entry["token"])
            OrganizationMember.objects.filter(user=annotator).exclude(organization=organization).delete()
            OrganizationMember.objects.get_or_create(user=annotator, organization=organization)
            annotator.active_organization = organization
            annotator.save(update_fields=["active_organization"])
            made[entry["email"]] = organization.id
    return made


def _isolate(request):
    """The guard's move request (`move_accounts`); {"made": {e-mail: organization id}}.

    Only builder's admin may: the superuser whose e-mail the server was started with (LABEL_STUDIO_USERNAME, from
    `builder server start`), identified by API token. Anyone else gets 403 and nothing changes."""
    from django.http import JsonResponse

    refused = _not_builder_admin(request)
    if refused is not None:
        return refused
    entries = _entries(request)
    if entries is None:
        return JsonResponse({"detail": "malformed request"}, status=400)
    try:
        made = move_accounts(entries)
    except MoveRefused as refused:
        return JsonResponse({"detail": refused.detail}, status=refused.status)
    except Exception as error:  # fails closed: the transaction is rolled back, nothing moved
        return JsonResponse({"detail": f"{type(error).__name__}"}, status=500)
    return JsonResponse({"made": made})


def _not_builder_admin(request):
    """None for a POST by builder's admin: the superuser whose e-mail the server was started with
    (LABEL_STUDIO_USERNAME, from `builder server start`), identified by API token; else the refusal (405 or 403)."""
    from django.http import JsonResponse

    if request.method != "POST":
        return JsonResponse({"detail": "Method not allowed."}, status=405)
    user = _token_user(request)
    admin_email = os.environ.get("LABEL_STUDIO_USERNAME")
    if user is None or not admin_email or not user.is_superuser or user.email != admin_email:
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    return None


# The columns of a task and of a prediction `add_tasks` writes: those Label Studio 1.23.2's import sets (tasks/
# serializers.py, TaskSerializerBulk.add_tasks and add_predictions), the others their model's default. A Label Studio
# with other columns is refused (501): builder then imports through the API, as it does everywhere else.
_TASK_COLUMNS = {
    "id", "data", "meta", "allow_skip", "total_predictions", "project_id", "created_at", "updated_at",
    "updated_by_id", "is_labeled", "overlap", "file_upload_id", "inner_id", "total_annotations",
    "cancelled_annotations", "precomputed_agreement", "comment_count", "unresolved_comment_count",
    "last_comment_updated_at",
}  # fmt: skip
_PREDICTION_COLUMNS = {
    "id", "result", "score", "model_version", "mislabeling", "model_id", "model_run_id", "cluster", "neighbors",
    "task_id", "project_id", "created_at", "updated_at",
}  # fmt: skip
_ROWS_PER_STATEMENT = 1000  # 19 parameters a task: under SQLite's 32,766 per statement


class GuardRefused(Exception):
    """A guard request refused, nothing made: `status` is the HTTP status the guard answers, `detail` its reason."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _insert(model, same: dict, rows: list[dict]) -> None:
    """Insert `rows` (attribute name -> value, with `same`'s values for every row; the model's default for any other
    column, the database's id) with a few multi-row INSERTs, each value prepared by its field as Django's own
    `bulk_create` prepares it (a value all rows share, once)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    varying = set(rows[0]) if rows else set()
    if any(set(row) != varying for row in rows):
        raise GuardRefused(500, "rows of different columns")
    # per column: (attribute name, its field's preparation) when it varies, else (None, the prepared value)
    plan = [
        (field.attname, field.get_db_prep_save)
        if field.attname in varying
        else (None, field.get_db_prep_save(same.get(field.attname, field.get_default()), connection))
        for field in fields
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            part = rows[start : start + _ROWS_PER_STATEMENT]
            params = [how(row[name], connection) if name is not None else how for row in part for name, how in plan]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([one] * len(part))}", params
            )


def add_tasks(target: int, tasks: list, user) -> list[int]:
    """Make `tasks` (Label Studio's import format: {"data": ..., "predictions": [...]}) in project `target`, as
    Label Studio's import of them would (data_import/api.py, `sync_import` committing to the project): the same
    validation (its serializer and prediction checks), the same rows (inner ids after the project's last, the
    project's overlap, normalized prediction results), the same counters, data columns, model version and webhook;
    the new tasks' ids, in order.

    One transaction, a few multi-row INSERTs. Label Studio's import builds a Django object per task and per
    prediction and compiles them one by one, which is most of what it costs; a blind push gives each task to
    `annotators_per_sentence` copies, so it makes them here (builder/labelstudio/blind_import.py)."""
    from core.feature_flags import flag_set
    from data_import.serializers import ImportApiSerializer
    from django.db import transaction
    from django.utils import timezone
    from fsm.utils import is_fsm_enabled
    from label_studio_sdk.label_interface import LabelInterface
    from projects.models import Project, recalculate_all_stats
    from tasks.models import Prediction, Task
    from webhooks.models import WebhookAction
    from webhooks.utils import emit_webhooks_for_instance

    if {f.column for f in Task._meta.concrete_fields} != _TASK_COLUMNS or [f.name for f in Task._meta.many_to_many] != [
        "comment_authors"
    ]:
        raise GuardRefused(501, "unexpected task columns")
    if {f.column for f in Prediction._meta.concrete_fields} != _PREDICTION_COLUMNS:
        raise GuardRefused(501, "unexpected prediction columns")
    if is_fsm_enabled(user):  # the import would also record each task's state
        raise GuardRefused(501, "task states are on")
    project = Project.objects.filter(id=target).first()
    if project is None:
        raise GuardRefused(404, "no such project")
    # Label Studio's checks, as its import makes them (sync_import, then ImportAPI._save)
    if project.label_config_is_not_default and flag_set(
        "fflag_feat_utc_210_prediction_validation_15082025", user="auto"
    ):
        interface = LabelInterface(project.label_config)
        for i, task in enumerate(tasks):
            for j, prediction in enumerate(task.get("predictions", ())):
                if interface.validate_prediction(prediction, return_errors=True):
                    raise GuardRefused(400, f"task {i}, prediction {j}: invalid")
    serializer = ImportApiSerializer(data=tasks, many=True, context={"project": project, "user": user})
    if not serializer.is_valid():
        raise GuardRefused(400, f"invalid tasks: {str(serializer.errors)[:200]}")
    validated = serializer.validated_data
    with transaction.atomic():
        project = Project.objects.select_for_update().get(id=target)
        last = Task.objects.filter(project=project).order_by("-inner_id").values_list("inner_id", flat=True)[:1]
        first = (last[0] or 0) + 1 if last else 1
        now = timezone.now()
        made_at = {"project_id": target, "created_at": now, "updated_at": now}
        same = {
            **made_at,
            "overlap": project.maximum_annotations,
            "is_labeled": project.maximum_annotations <= 0,
            "total_annotations": 0,
            "cancelled_annotations": 0,
        }
        _insert(
            Task,
            same,
            [
                {
                    "data": task["data"],
                    "meta": task.get("meta", {}),
                    "file_upload_id": task.get("file_upload_id"),
                    "inner_id": first + i,
                    "total_predictions": len(task.get("predictions", ())),
                    "allow_skip": task.get("allow_skip", True),
                }
                for i, task in enumerate(validated)
            ],
        )
        made = dict(Task.objects.filter(project=project, inner_id__gte=first).values_list("inner_id", "id"))
        if len(made) != len(validated):
            raise GuardRefused(409, "tasks made meanwhile")  # rolled back
        ids = [made[first + i] for i in range(len(validated))]
        predictions, last_version = [], None
        for task_id, task in zip(ids, validated, strict=True):
            for prediction in task.get("predictions", ()):
                score = prediction.get("score")
                try:
                    score = float(score) if score is not None else None
                except ValueError:  # as the import: no score
                    score = None
                last_version = prediction.get("model_version", "undefined")
                result = Prediction.prepare_prediction_result(prediction["result"], project)
                predictions.append(
                    {"task_id": task_id, "result": result, "score": score, "model_version": last_version}
                )
        _insert(Prediction, made_at, predictions)
        # what the import does once the rows are made (sync_import), less recounting the new tasks' annotations and
        # predictions: they were given their counts above (none, and their predictions)
        project.update_tasks_states(
            maximum_annotations_changed=False, overlap_cohort_percentage_changed=False, tasks_number_changed=True
        )
        if recalculate_all_stats:
            counts = {"task_count": len(ids), "annotation_count": 0, "prediction_count": len(predictions)}
            recalculate_all_stats(project.id, **counts)
        project.summary.update_data_columns(tasks)
        if not project.model_version and last_version is not None:
            project.model_version = last_version
            project.save()
    new = Task.objects.filter(project=project, inner_id__gte=first)  # a queryset: read only for a webhook
    emit_webhooks_for_instance(project.organization, project, WebhookAction.TASKS_CREATED, new)
    return ids


def _add(request):
    """The guard's add request (`add_tasks`): {"project": id, "tasks": [tasks]} by builder's admin only;
    {"tasks": [new task ids]}."""
    from django.http import JsonResponse

    refused = _not_builder_admin(request)
    if refused is not None:
        return refused
    body = _json_body(request, ADD_BODY_LIMIT)
    well_formed = (
        isinstance(body, dict)
        and set(body) == {"project", "tasks"}
        and isinstance(body["project"], int)
        and not isinstance(body["project"], bool)
        and isinstance(body["tasks"], list)
        and 0 < len(body["tasks"]) <= ADD_LIMIT
        and all(
            isinstance(task, dict)
            and set(task) <= {"data", "predictions"}
            and isinstance(task.get("data"), dict)
            and isinstance(task.get("predictions", []), list)
            and all(isinstance(p, dict) and set(p) <= PREDICTION_KEYS for p in task.get("predictions", []))
            for task in body["tasks"]
        )
    )
    if not well_formed:
        return JsonResponse({"detail": "malformed request"}, status=400)
    return _answer(lambda: {"tasks": add_tasks(body["project"], body["tasks"], _token_user(request))})


def export_tasks(project_id: int, after: int, limit: int) -> list[dict]:
    """The project's tasks with ids above `after`, at most `limit`, by id, each with what builder's pull reads of
    Label Studio's export (data_export: `ExportDataSerializer` with the options builder asks for), valued as that
    export values them: the task's id and data; each annotation's id, author, result, cancelled and ground-truth
    flags, lead time, last editor and time of that edit; each prediction's model version, score and result.

    Label Studio's export serializes every field of every task, annotation and prediction through Django REST
    framework, with a query per task for its predictions: a blind project's copies hold each sentence once per
    annotator, so a full pull of them exported twice the tasks a shared project's does. Three queries here."""
    from core.label_config import replace_task_data_undefined_with_config_field
    from projects.models import Project
    from rest_framework.fields import DateTimeField
    from tasks.models import Annotation, Prediction, Task

    project = Project.objects.filter(id=project_id).first()
    if project is None:
        raise GuardRefused(404, "no such project")
    rows = list(Task.objects.filter(project=project, id__gt=after).order_by("id").values_list("id", "data")[:limit])
    if not rows:
        return []
    tasks = {}
    for task_id, data in rows:
        replace_task_data_undefined_with_config_field(data, project)  # as the export does
        tasks[task_id] = {"id": task_id, "data": data, "annotations": [], "predictions": []}
    span = {"task__project": project, "task_id__gt": after, "task_id__lte": rows[-1][0]}
    moment = DateTimeField()  # as the export's serializer writes a time
    fields = ("id", "task_id", "completed_by_id", "result", "was_cancelled", "ground_truth", "lead_time")
    for *values, updated_by, updated_at in (
        Annotation.objects.filter(**span).order_by("id").values_list(*fields, "updated_by_id", "updated_at")
    ):
        annotation = dict(
            zip(("id", "task", "completed_by", "result", "was_cancelled", "ground_truth", "lead_time"), values)
        )
        task_id = annotation.pop("task")
        annotation["updated_by"] = updated_by
        annotation["updated_at"] = moment.to_representation(updated_at) if updated_at is not None else None
        tasks[task_id]["annotations"].append(annotation)
    for task_id, model_version, score, result in (
        Prediction.objects.filter(**span).order_by("id").values_list("task_id", "model_version", "score", "result")
    ):
        tasks[task_id]["predictions"].append({"model_version": model_version, "score": score, "result": result})
    return list(tasks.values())


def _export(request):
    """The guard's export request (`export_tasks`): {"project": id, "after": task id} by builder's admin only;
    {"tasks": [...]}, EXPORT_LIMIT at most (fewer: the last page)."""
    from django.http import JsonResponse

    refused = _not_builder_admin(request)
    if refused is not None:
        return refused
    body = _json_body(request)
    if not (
        isinstance(body, dict)
        and set(body) == {"project", "after"}
        and all(type(body[key]) is int and body[key] >= 0 for key in body)
    ):
        return JsonResponse({"detail": "malformed request"}, status=400)
    return _answer(lambda: {"tasks": export_tasks(body["project"], body["after"], EXPORT_LIMIT)})
