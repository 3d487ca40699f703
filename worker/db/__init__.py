"""The data layer: every SQL statement the project runs lives under worker/db/."""

# The channel the jobs insert trigger (migrations/0001_initial.sql) notifies, with the queue name.
NEW_JOB_CHANNEL = "jobqueue_new_job"
