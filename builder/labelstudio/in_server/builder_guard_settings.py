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
CLONE_PATH, for builder's admin token only too: copying tasks a blind push imported once into the annotators' copies
that hold them, as Label Studio's import would have made them there (`clone_tasks`).
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
CLONE_PATH = "/builder-guard/clone-tasks/"  # copies of imported tasks into a blind copy (`clone_tasks`)
CLONE_HEADER = "X-Builder-Clone"  # on every answer to CLONE_PATH
CLONE_LIMIT = 10_000  # tasks per clone request (two parameters each, SQLite's limit 32,766)
STAGING_TITLE = "builder staging: blind push in progress"  # builder/labelstudio/blind_clone.py
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
        elif request.path_info == CLONE_PATH:
            response = _clone(request)
            response[CLONE_HEADER] = "1"
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


def _entries(request):
    """The accounts to move, from the JSON body; None unless every entry is well formed and names an admin of
    ADMIN_DOMAIN (so no other account's token can be set through this path)."""
    length = _as_id(request.META.get("CONTENT_LENGTH")) or 0
    if not request.META.get("CONTENT_TYPE", "").startswith("application/json") or not 0 < length <= BODY_LIMIT:
        return None
    try:
        entries = json.loads(request.body)
    except ValueError:
        return None
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


# The task and prediction columns `clone_tasks` writes, each: copied from the source row ("copy"), or the value
# Label Studio's import gives a new task or prediction. A Label Studio with other columns is refused (501): builder
# then imports through the API, as it does everywhere else.
_TASK_COLUMNS = {
    "id": None,  # the database's
    "data": "copy",
    "meta": "copy",
    "allow_skip": "copy",
    "total_predictions": "copy",
    "project_id": "project",
    "created_at": "now",
    "updated_at": "now",
    "updated_by_id": "null",
    "is_labeled": "false",
    "overlap": "overlap",
    "file_upload_id": "null",
    "inner_id": "inner_id",
    "total_annotations": "zero",
    "cancelled_annotations": "zero",
    "precomputed_agreement": "null",
    "comment_count": "zero",
    "unresolved_comment_count": "zero",
    "last_comment_updated_at": "null",
}
_PREDICTION_COLUMNS = {
    "id": None,
    "result": "copy",
    "score": "copy",
    "model_version": "copy",
    "mislabeling": "copy",
    "model_id": "null",
    "model_run_id": "null",
    "cluster": "null",
    "neighbors": "null",
    "task_id": "task",
    "project_id": "project",
    "created_at": "now",
    "updated_at": "now",
}


class CloneRefused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def _select_list(columns, expressions):
    """(column list, select list) of an `INSERT ... SELECT`: each column copied from the source row `s`, NULL, or
    the expression `expressions` gives for its kind (every other kind); refused (501) when a kind has none."""
    from django.db import connection

    quote = connection.ops.quote_name
    names = [column for column, how in columns.items() if how is not None]
    selected = []
    for column in names:
        how = columns[column]
        if how == "copy":
            selected.append(f"s.{quote(column)}")
        elif how == "null":
            selected.append("NULL")
        elif how in expressions:
            selected.append(expressions[how])
        else:
            raise CloneRefused(501, "unexpected columns")
    return ", ".join(quote(c) for c in names), ", ".join(selected)


def clone_tasks(target: int, sources: list[int]) -> list[int]:
    """Copy the tasks `sources` (with their predictions) into project `target`, in that order, as Label Studio's
    import of the same tasks would make them there (inner ids after the project's last, the overlap of the
    project, no annotations, the project's counters and data columns updated); the new tasks' ids.

    One transaction, two statements: `INSERT ... SELECT` joined with the list of source tasks. Label Studio's
    import builds a Django object per task and per prediction, which is most of what an import costs; a blind push
    imports each task once and has it copied into the copies that hold it (builder/labelstudio/blind_clone.py)."""
    from django.db import connection, transaction
    from django.utils import timezone
    from projects.models import Project, recalculate_all_stats
    from tasks.models import Prediction, Task
    from webhooks.models import WebhookAction
    from webhooks.utils import emit_webhooks_for_instance

    many = [field.name for field in Task._meta.many_to_many]  # none a new task has (comment authors)
    if {f.column for f in Task._meta.concrete_fields} != set(_TASK_COLUMNS) or many != ["comment_authors"]:
        raise CloneRefused(501, "unexpected task columns")
    if {f.column for f in Prediction._meta.concrete_fields} != set(_PREDICTION_COLUMNS):
        raise CloneRefused(501, "unexpected prediction columns")
    quote = connection.ops.quote_name
    tasks_table, predictions_table = quote(Task._meta.db_table), quote(Prediction._meta.db_table)
    # the list of sources: (source task id, position), as a VALUES table m(column1, column2)
    listed = ", ".join(["(%s, %s)"] * len(sources))
    pairs = [value for position, source in enumerate(sources) for value in (source, position)]
    with transaction.atomic():
        project = Project.objects.select_for_update().filter(id=target).first()
        if project is None:
            raise CloneRefused(404, "no such project")
        last = Task.objects.filter(project=project).order_by("-inner_id").values_list("inner_id", flat=True)[:1]
        first = (last[0] or 0) + 1 if last else 1
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # the values Label Studio's import gives a new task (tasks/serializers.py, add_tasks)
        values = {
            "project": "%s",
            "now": "%s",
            "false": "%s",
            "zero": "0",
            "overlap": "%s",
            "inner_id": "%s + m.column2",
        }
        into, selected = _select_list(_TASK_COLUMNS, values)
        params = []
        for column, how in _TASK_COLUMNS.items():
            params += {
                "project": [target],
                "now": [now],
                "false": [False],
                "overlap": [project.maximum_annotations],
            }.get(how, [])
            if how == "inner_id":
                params.append(first)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {tasks_table} ({into}) SELECT {selected} FROM {tasks_table} s "
                f"JOIN (VALUES {listed}) m ON s.{quote('id')} = m.column1 ORDER BY m.column2",
                params + pairs,
            )
        made = dict(Task.objects.filter(project=project, inner_id__gte=first).values_list("inner_id", "id"))
        if len(made) != len(sources):  # a source task that does not exist made no row: nothing made
            raise CloneRefused(409, "missing task")
        ids = [made[first + i] for i in range(len(sources))]
        into, selected = _select_list(_PREDICTION_COLUMNS, {"task": "n.id", "project": "%s", "now": "%s"})
        params = []
        for column, how in _PREDICTION_COLUMNS.items():
            params += {"project": [target], "now": [now]}.get(how, [])
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {predictions_table} ({into}) SELECT {selected} FROM {predictions_table} s "
                f"JOIN (VALUES {listed}) m ON s.{quote('task_id')} = m.column1 "
                f"JOIN {tasks_table} n ON n.{quote('project_id')} = %s AND n.{quote('inner_id')} = %s + m.column2 "
                f"ORDER BY m.column2, s.{quote('id')}",
                params + pairs + [target, first],
            )
        tasks = Task.objects.filter(project=project, inner_id__gte=first)  # the new ones (no id list: SQLite's limit)
        predictions = Prediction.objects.filter(task__project=project, task__inner_id__gte=first)
        # what Label Studio's import does after making the tasks (data_import/api.py, sync_import), less recounting
        # the new tasks' annotations and predictions, which they were given above (none, and their source's)
        project.update_tasks_states(
            maximum_annotations_changed=False, overlap_cohort_percentage_changed=False, tasks_number_changed=True
        )
        if recalculate_all_stats:
            counts = {"task_count": len(ids), "annotation_count": 0, "prediction_count": predictions.count()}
            recalculate_all_stats(project.id, **counts)
        project.summary.update_data_columns([{"data": data} for data in tasks.values_list("data", flat=True)])
        last_version = predictions.order_by("-id").values_list("model_version", flat=True)[:1]
        if not project.model_version and last_version:
            project.model_version = last_version[0] if last_version[0] is not None else "undefined"
            project.save()
    # a queryset: read only when the organization has a webhook for it (Label Studio checks first)
    emit_webhooks_for_instance(project.organization, project, WebhookAction.TASKS_CREATED, tasks)
    return ids


def empty_staging(project_id: int) -> int:
    """Delete the tasks and predictions of a blind push's staging project (titled STAGING_TITLE, no annotation or
    draft) in two statements, without Label Studio's per-object deletion (5 s for 20,000 tasks); how many tasks.
    Anything else pointing at its tasks makes the database refuse, and nothing is deleted (builder then deletes the
    project through the API)."""
    from django.db import transaction
    from projects.models import Project
    from tasks.models import Annotation, AnnotationDraft, Prediction, Task

    with transaction.atomic():
        project = Project.objects.select_for_update().filter(id=project_id, title=STAGING_TITLE).first()
        if project is None:
            raise CloneRefused(404, "no such staging project")
        if (
            Annotation.objects.filter(task__project=project).exists()
            or AnnotationDraft.objects.filter(task__project=project).exists()
        ):
            raise CloneRefused(409, "the staging project has annotations")
        Prediction.objects.filter(task__project=project)._raw_delete(Prediction.objects.db)
        return Task.objects.filter(project=project)._raw_delete(Task.objects.db)


def _clone(request):
    """The guard's clone request (`clone_tasks`): {"project": id, "tasks": [source task ids]} by builder's admin
    only; {"tasks": [new task ids]}. {"empty": id}: `empty_staging`, {"deleted": how many tasks}."""
    from django.http import JsonResponse

    refused = _not_builder_admin(request)
    if refused is not None:
        return refused
    length = _as_id(request.META.get("CONTENT_LENGTH")) or 0
    body = None
    if request.META.get("CONTENT_TYPE", "").startswith("application/json") and 0 < length <= 4 * BODY_LIMIT:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
    if isinstance(body, dict) and set(body) == {"empty"} and isinstance(body["empty"], int):
        try:
            return JsonResponse({"deleted": empty_staging(body["empty"])})
        except CloneRefused as refused_empty:
            return JsonResponse({"detail": refused_empty.detail}, status=refused_empty.status)
        except Exception as error:  # fails closed: rolled back, nothing deleted
            return JsonResponse({"detail": f"{type(error).__name__}"}, status=500)
    well_formed = (
        isinstance(body, dict)
        and set(body) == {"project", "tasks"}
        and isinstance(body["project"], int)
        and isinstance(body["tasks"], list)
        and 0 < len(body["tasks"]) <= CLONE_LIMIT
        and all(isinstance(t, int) and not isinstance(t, bool) for t in body["tasks"])
    )
    if not well_formed:
        return JsonResponse({"detail": "malformed request"}, status=400)
    try:
        ids = clone_tasks(body["project"], body["tasks"])
    except CloneRefused as refused_clone:
        return JsonResponse({"detail": refused_clone.detail}, status=refused_clone.status)
    except Exception as error:  # fails closed: the transaction is rolled back, nothing made
        return JsonResponse({"detail": f"{type(error).__name__}: {str(error)[:200]}"}, status=500)
    return JsonResponse({"tasks": ids})
