from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from builder.accounts import api as accounts_api
from builder.accounts import views as accounts_views
from builder.graphs import api, pages
from builder.graphs import paths as guided_paths
from compute.jobs import api as jobs_api


class IdConverter:
    """A database id: digits that fit a 32-bit integer column (larger ones are simply not
    found, instead of overflowing the database's integer)."""

    regex = "[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

handler400 = "builder.graphs.errors.bad_request"
handler403 = "builder.graphs.errors.permission_denied"
handler404 = "builder.graphs.errors.page_not_found"
handler500 = "builder.graphs.errors.server_error"


@csrf_exempt  # it changes nothing; without this a POST would get the HTML CSRF page
def api_not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/ (or an id that is not a number) answers in the API's error
    format, whatever DEBUG says, instead of Django's HTML 404 page."""
    return JsonResponse({"error": f"no such endpoint: {request.method} {request.path}"},
                        status=404)


api_urls = [
    path("auth/token", accounts_api.TokenCreateView.as_view()),
    path("auth/tokens", accounts_api.TokenListView.as_view()),
    path("auth/tokens/<id:token_id>", accounts_api.TokenDetailView.as_view()),
    path("graphs", api.GraphListView.as_view()),
    path("graphs/import", api.GraphImportView.as_view()),
    path("graphs/<id:graph_id>", api.GraphDetailView.as_view()),
    path("graphs/<id:graph_id>/versions", api.VersionListView.as_view()),
    path("graphs/<id:graph_id>/versions/<id:number>", api.VersionDetailView.as_view()),
    path("graphs/<id:graph_id>/versions/<id:number>/restore", api.RestoreView.as_view()),
    path("graphs/<id:graph_id>/download", api.DownloadView.as_view()),
    path("graphs/<id:graph_id>/sql", api.GraphSqlView.as_view()),
    path("graphs/<id:graph_id>/share", api.ShareListView.as_view()),
    path("graphs/<id:graph_id>/share/<id:link_id>", api.ShareDetailView.as_view()),
    path("shared/<str:token>", api.SharedView.as_view()),
    path("shared/<str:token>/fork", api.SharedForkView.as_view()),
    path("shared/<str:token>/download", api.SharedDownloadView.as_view()),
    path("shared/<str:token>/inspect", api.SharedInspectView.as_view()),
    path("shared/<str:token>/sql", api.SharedSqlView.as_view()),
    path("shared/<str:token>/jobs", jobs_api.SharedJobListView.as_view()),
    path("shared/<str:token>/jobs/<id:job_id>/manifest",
         jobs_api.SharedJobManifestView.as_view()),
    path("shared/<str:token>/jobs/<id:job_id>/card", jobs_api.SharedJobCardView.as_view()),
    path("jobs", jobs_api.JobListView.as_view()),
    path("jobs/check", jobs_api.JobCheckView.as_view()),
    path("jobs/<id:job_id>", jobs_api.JobDetailView.as_view()),
    path("jobs/<id:job_id>/cancel", jobs_api.JobCancelView.as_view()),
    path("jobs/<id:job_id>/metrics", jobs_api.JobEventsView.as_view()),
    path("jobs/<id:job_id>/attention", jobs_api.JobAttentionView.as_view()),
    path("jobs/<id:job_id>/download", jobs_api.JobDownloadView.as_view()),
    path("jobs/<id:job_id>/sql", jobs_api.JobSqlView.as_view()),
    path("jobs/<id:job_id>/manifest", jobs_api.JobManifestView.as_view()),
    path("jobs/<id:job_id>/card", jobs_api.JobCardView.as_view()),
    path("jobs/<id:job_id>/edges", jobs_api.JobEdgesView.as_view()),
    path("jobs/<id:job_id>/next", jobs_api.JobNextView.as_view()),
    path("datasets", jobs_api.DatasetListView.as_view()),
    path("run-kinds", jobs_api.RunKindListView.as_view()),
    path("uploads", jobs_api.UploadListView.as_view()),
    path("uploads/<id:upload_id>", jobs_api.UploadDetailView.as_view()),
    path("inspect", api.InspectView.as_view()),
    path("code", api.CodeView.as_view()),
    path("sql", api.DocumentSqlView.as_view()),
    path("sql/schema", api.SqlSchemaView.as_view()),
    path("blocks", api.BlocksView.as_view()),
    path("paths", guided_paths.PathListView.as_view()),
    path("paths/<str:name>", guided_paths.PathDetailView.as_view()),
    path("paths/<str:name>/steps/<str:step_id>/check",
         guided_paths.PathStepCheckView.as_view()),
    path("paths/<str:name>/progress", guided_paths.PathProgressView.as_view()),
    path("blocks/mine", api.MyBlocksView.as_view()),
    path("blocks/custom", api.CustomBlockView.as_view()),
    path("starters", api.StartersView.as_view()),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^(?P<rest>.*)$", api_not_found),  # last: whatever matched nothing above
]

urlpatterns = [
    path("", pages.home, name="home"),
    path("new", pages.new_graph, name="new-graph"),
    path("g/<id:graph_id>", pages.edit_graph, name="edit-graph"),
    path("g/<id:graph_id>/delete", pages.delete_graph, name="delete-graph"),
    path("s/<str:token>", pages.shared_page, name="shared"),
    path("s/<str:token>/fork", pages.fork_shared, name="shared-fork"),
    path("accounts/signup/", accounts_views.signup, name="signup"),
    path("accounts/login/", accounts_views.login_page, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", accounts_views.account, name="account"),
    path("admin/login/", accounts_views.login_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/", include(api_urls)),
]
