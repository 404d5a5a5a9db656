urlpatterns: list = []  # filled by the catalogue import views
