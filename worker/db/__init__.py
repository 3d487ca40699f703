"""The data layer: every SQL statement the project runs lives under worker/db/."""

# The channel the jobs insert trigger (migrations/0001_initial.sql) and the statements that make
# jobs ready again (sql/*.sql) notify, with the queue name. The SQL writes it literally, to run
# as written; tests/unit/test_sql_files.py fails if the two ever differ.
NEW_JOB_CHANNEL = "jobqueue_new_job"
