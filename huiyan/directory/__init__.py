"""The directory of organisations and devices at run time: device presence, bulk import, the allocation plan."""
