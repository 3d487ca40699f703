-- Demo data for the console's screenshots (docs/console/screenshots.py): a few queues in
-- every state, two live workers, schedules and a scaling timeline. Not used by the product.
SELECT setseed(0.42);

INSERT INTO queues (name, paused, concurrency_limit, rate_limit_jobs, rate_limit_per_seconds)
VALUES ('emails', false, 20, 100, 60), ('reports', true, 2, NULL, NULL);

-- finished over the last hour, busier lately: the throughput charts
INSERT INTO jobs (queue_name, job_type, payload, status, attempts, run_at, created_at,
                  started_at, finished_at)
SELECT q, t, '{"to": "user@example.com", "subject": "Welcome", "body": "Hello!"}', 'completed',
       1, f - interval '3 seconds', f - interval '3 seconds', f - interval '2 seconds', f
FROM (SELECT (ARRAY['emails', 'default', 'reports'])[1 + (random() * 2.4)::int] AS q,
             now() - interval '60 minutes' * power(random(), 1.5) AS f
      FROM generate_series(1, 1500)) AS s,
     LATERAL (SELECT CASE s.q WHEN 'reports' THEN 'report_generation'
                              WHEN 'emails' THEN 'emails' ELSE 'noop' END AS t) AS tt;

-- waiting: ready now, and scheduled later
INSERT INTO jobs (queue_name, job_type, payload, run_at, created_at)
SELECT (ARRAY['emails', 'default', 'reports'])[1 + (g * g + g / 7) % 3],
       (ARRAY['emails', 'noop', 'report_generation'])[1 + (g * g + g / 7) % 3],
       '{"to": "user@example.com", "subject": "Welcome", "body": "Hello!"}',
       now() + CASE WHEN g % 5 = 0 THEN interval '20 minutes' ELSE -interval '40 seconds' * g END,
       now() - interval '40 seconds' * g
FROM generate_series(1, 60) AS g;

-- failed, with their errors
INSERT INTO jobs (queue_name, job_type, payload, status, attempts, max_tries, last_error,
                  run_at, created_at, started_at, finished_at)
SELECT 'emails', 'emails',
       jsonb_build_object('to', 'user' || g || '@example.com', 'subject', 'Invoice', 'body', '...'),
       'failed', 3, 3,
       (ARRAY['SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable',
              'TimeoutError: the SMTP server did not answer in 30 s'])[1 + g % 2],
       now() - interval '2 hours', now() - interval '2 hours', now() - interval '15 minutes' * g,
       now() - interval '15 minutes' * g + interval '2 seconds'
FROM generate_series(1, 7) AS g;

-- blocked behind a report
INSERT INTO jobs (queue_name, job_type, payload, status, created_at, batch_id)
SELECT 'reports', 'report_generation', '{"report_type": "monthly"}', 'blocked',
       now() - interval '5 minutes', 7
FROM generate_series(1, 3);

-- two live workers and what they run
INSERT INTO workers (id, name, queues, concurrency, in_flight, started_at, heartbeat_at,
                     lease_expires_at)
VALUES ('5b1f0c1e-2f7e-4d0a-9a51-6f3c1d2e8a01', 'jobqueue-worker-7d9f-abcde',
        ARRAY['emails', 'default'], 4, 2, now() - interval '3 hours', now() - interval '2 seconds',
        now() + interval '28 seconds'),
       ('0c7e9d2a-4b1f-4e8e-8f1a-2d3c4b5a6e02', 'jobqueue-worker-7d9f-fghij',
        ARRAY['reports'], 2, 1, now() - interval '40 minutes', now() - interval '4 seconds',
        now() + interval '26 seconds');

INSERT INTO jobs (queue_name, job_type, payload, status, attempts, created_at, started_at,
                  worker_id, lease_expires_at, progress, progress_message, batch_id)
VALUES ('emails', 'emails', '{"to": "a@example.com", "subject": "Hi", "body": "Hello"}',
        'running', 1, now() - interval '20 seconds', now() - interval '12 seconds',
        '5b1f0c1e-2f7e-4d0a-9a51-6f3c1d2e8a01', now() + interval '28 seconds', NULL, NULL, NULL),
       ('default', 'noop', '{}', 'running', 1, now() - interval '9 seconds',
        now() - interval '3 seconds', '5b1f0c1e-2f7e-4d0a-9a51-6f3c1d2e8a01',
        now() + interval '28 seconds', NULL, NULL, NULL),
       ('reports', 'report_generation', '{"report_type": "monthly"}', 'running', 1,
        now() - interval '6 minutes', now() - interval '5 minutes',
        '0c7e9d2a-4b1f-4e8e-8f1a-2d3c4b5a6e02', now() + interval '26 seconds', 0.62,
        'aggregating 3.1M rows', 7);

INSERT INTO schedules (name, cron, every_seconds, timezone, job, next_run_at, last_run_at,
                       last_job_id)
VALUES ('nightly-report', '0 2 * * *', NULL, 'Europe/Paris',
        '{"job_type": "report_generation", "payload": {"report_type": "daily"}, "queue_name": "reports"}',
        date_trunc('day', now()) + interval '1 day 1 hour', date_trunc('day', now()) + interval '1 hour',
        (SELECT min(id) FROM jobs WHERE queue_name = 'reports' AND status = 'completed')),
       ('digest', NULL, 900, 'UTC',
        '{"job_type": "emails", "payload": {"to": "team@example.com", "subject": "Digest", "body": "..."}, "queue_name": "emails"}',
        now() + interval '6 minutes', now() - interval '9 minutes',
        (SELECT max(id) FROM jobs WHERE queue_name = 'emails' AND status = 'completed'));

-- each step starts from the replicas its Deployment's previous step left
INSERT INTO scaling_decisions (decided_at, namespace, deployment, from_replicas, to_replicas,
                               reason, detail)
SELECT now() - ago, 'jobs', 'worker-' || pool,
       coalesce(lag(replicas) OVER (PARTITION BY pool ORDER BY ago DESC), 0), replicas, reason,
       detail::jsonb
FROM (VALUES (interval '5 hours', 'emails', 2, 'scale-up', '{"ready": 18, "running": 0}'),
             ('4 hours 40 minutes', 'emails', 6, 'scale-up', '{"ready": 61, "running": 8}'),
             ('4 hours 10 minutes', 'emails', 8, 'limit-capped',
              '{"ready": 240, "running": 20, "desired": 12}'),
             ('3 hours', 'emails', 3, 'scale-down', '{"ready": 4, "running": 9}'),
             ('2 hours', 'emails', 0, 'scale-down', '{"ready": 0, "running": 0}'),
             ('50 minutes', 'emails', 2, 'scale-up', '{"ready": 25, "running": 0}'),
             ('3 hours 30 minutes', 'reports', 1, 'scale-up', '{"ready": 2, "running": 0}'),
             ('20 minutes', 'reports', 0, 'queue-paused', '{"ready": 21, "running": 1}')
     ) AS step (ago, pool, replicas, reason, detail);

ANALYZE;

-- the failed emails' stories (migration 0010): each attempt's error and traceback, the lines
-- the handler logged, and the worker that ran the last attempt
UPDATE jobs SET worker_id = '5b1f0c1e-2f7e-4d0a-9a51-6f3c1d2e8a01' WHERE status = 'failed';
INSERT INTO job_errors (job_id, attempt, at, error, traceback)
SELECT j.id, a.n, j.finished_at - interval '1 minute' * (3 - a.n), j.last_error,
       'Traceback (most recent call last):' || E'\n'
       || '  File "/app/mycompany/mail.py", line 48, in send_invoice' || E'\n'
       || '    await smtp.send_message(message)' || E'\n'
       || '  File "/app/mycompany/smtp.py", line 112, in send_message' || E'\n'
       || '    reply = await self._command("DATA")' || E'\n' || j.last_error
FROM jobs AS j CROSS JOIN generate_series(1, 3) AS a(n)
WHERE j.status = 'failed';
INSERT INTO job_logs (job_id, attempt, at, level, message)
SELECT j.id, a.n, j.finished_at - interval '1 minute' * (3 - a.n) - interval '1 second' * l.k,
       l.level, l.message
FROM jobs AS j
CROSS JOIN generate_series(1, 3) AS a(n)
CROSS JOIN (VALUES (2, 'INFO', 'rendering the invoice for ' || 'user@example.com'),
                   (1, 'INFO', 'connecting to smtp.example.com:587'),
                   (0, 'WARNING', 'the server refused a recipient; the attempt fails'))
    AS l(k, level, message)
WHERE j.status = 'failed'
ORDER BY j.id, a.n, l.k DESC;
