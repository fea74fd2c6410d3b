from django.contrib import admin

from .models import Graph, GraphVersion, ShareLink


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


@admin.register(GraphVersion)
class GraphVersionAdmin(admin.ModelAdmin):
    list_display = ("graph", "number", "author", "message", "created_at")
    list_filter = ("created_at",)
    search_fields = ("graph__name", "author__username", "message")
    raw_id_fields = ("graph", "author")
    readonly_fields = ("graph", "number", "document_json", "content_hash", "author",
                       "message", "restored_from", "created_at")


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("graph", "prefix", "version", "created_by", "created_at", "revoked_at")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("graph__name", "prefix", "created_by__username")
    raw_id_fields = ("graph", "version", "created_by")
    readonly_fields = ("token_hash", "prefix", "created_at")
