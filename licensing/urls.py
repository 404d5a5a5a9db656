urlpatterns: list = []  # pages: filled in by the repertoire pages
