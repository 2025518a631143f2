"""Import and export of the parts catalogue (django-import-export): one row per part, matched by
SKU within the tenant in scope. Stock counts are not a model resource — a count becomes an
`adjust` movement through the services (spareparts/imports.py), so the ledger stays whole."""

from import_export import resources

from .models import Part

PART_COLUMNS = ("sku", "barcode", "name", "compatible_models", "unit", "cost_fen", "price_fen", "reorder_point",
                "reorder_qty", "supplier", "is_active")


class PartResource(resources.ModelResource):
    class Meta:
        model = Part
        fields = PART_COLUMNS
        export_order = PART_COLUMNS
        import_id_fields = ("sku",)
        clean_model_instances = True
        skip_unchanged = True

    def __init__(self, *, tenant, **kwargs):
        super().__init__(**kwargs)
        self.tenant = tenant

    def get_queryset(self):
        return Part.objects.all()

    def after_init_instance(self, instance, new, row, **kwargs):
        instance.tenant = self.tenant
