from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Graph, GraphVersion, PathProgress, ShareLink


class VersionInline(admin.TabularInline):
    model = GraphVersion
    fields = ("number", "author", "message", "restored_from", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Graph)
class GraphAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "head", "forked_from", "updated_at", "created_at")
    list_filter = ("created_at", "updated_at")
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner", "forked_from")
    inlines = [VersionInline]


def is_latest(version: GraphVersion) -> bool:
    return version.number == version.graph.head


@admin.register(GraphVersion)
class GraphVersionAdmin(admin.ModelAdmin):
    """Versions can be looked at and old ones deleted; never a graph's latest: the graph
    would open as 404 and every save to it fail (its head names no version)."""

    list_display = ("graph", "number", "author", "message", "created_at")
    list_filter = ("created_at",)
    search_fields = ("graph__name", "author__username", "message")
    raw_id_fields = ("graph", "author")
    # initial_weights too: as a choice, the form would list (and load) every weights file.
    readonly_fields = ("graph", "number", "document_json", "content_hash", "author",
                       "message", "restored_from", "initial_weights", "created_at")

    def has_delete_permission(self, request: HttpRequest,
                              obj: GraphVersion | None = None) -> bool:
        if obj is not None and is_latest(obj):
            return False
        return super().has_delete_permission(request, obj)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[Any, ...]:
        """The "delete selected" action asks this before it deletes anything: a latest
        version among them is listed as protected, and nothing is deleted."""
        deletable, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        latest = [f"{version} (the latest version of {version.graph}: save a newer one, or "
                  "delete the graph)" for version in objs if is_latest(version)]
        if latest:
            # has_delete_permission() refused them too; say why instead of "no permission".
            return deletable, counts, set(), [*protected, *latest]
        return deletable, counts, perms_needed, protected


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("graph", "prefix", "version", "created_by", "created_at", "revoked_at")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("graph__name", "prefix", "created_by__username")
    raw_id_fields = ("graph", "version", "created_by")
    readonly_fields = ("token_hash", "prefix", "created_at")


@admin.register(PathProgress)
class PathProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "path", "current", "updated_at")
    list_filter = ("path",)
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
