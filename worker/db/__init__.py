"""The data layer: every SQL statement the project runs lives under worker/db/."""
