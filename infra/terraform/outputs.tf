# The template's outputs, snake_cased; each names the environment variable it fills.

output "analytics_queue_url" {
  description = "AWS_SQS_URL, where the chatbot sends analytics events."
  value       = module.queues.urls.analytics
}

output "analytics_dead_letter_queue_url" {
  description = "CV_ANALYTICS_DLQ_URL"
  value       = module.queues.urls.analytics_dlq
}

output "job_request_queue_url" {
  description = "AI_JOB_REQUEST_QUEUE_URL"
  value       = module.queues.urls.job_request
}

output "job_request_dead_letter_queue_url" {
  description = "CV_ANALYTICS_JOB_REQUEST_DLQ_URL"
  value       = module.queues.urls.job_request_dlq
}

output "job_response_queue_url" {
  description = "AI_JOB_RESPONSE_QUEUE_URL"
  value       = module.queues.urls.job_response
}

output "job_response_dead_letter_queue_url" {
  description = "CV_ANALYTICS_JOB_RESPONSE_DLQ_URL"
  value       = module.queues.urls.job_response_dlq
}

output "events_table_name" {
  description = "CV_ANALYTICS_EVENTS_TABLE"
  value       = module.tables.names.events
}

output "interactions_table_name" {
  description = "CV_ANALYTICS_INTERACTIONS_TABLE"
  value       = module.tables.names.interactions
}

output "reports_table_name" {
  description = "CV_ANALYTICS_REPORTS_TABLE"
  value       = module.tables.names.reports
}

output "jobs_table_name" {
  description = "CV_ANALYTICS_JOBS_TABLE"
  value       = module.tables.names.jobs
}

output "function_names" {
  description = "The Lambda functions by role: processor, reporter, job_worker, job_results, http_api."
  value       = module.functions.names
}

output "http_api_url" {
  description = "The HTTP API's base URL (POST /jobs, GET /jobs/{jobId}, and the web app)."
  value       = module.api.url
}

output "weekly_report_rule_name" {
  value = module.functions.weekly_report_rule_name
}

output "alarm_topic_arn" {
  value = module.monitoring.alarm_topic_arn
}

output "report_failure_queue_url" {
  description = "Failed weekly report runs (EventBridge dead letters and Lambda on-failure records)."
  value       = module.queues.urls.report_failures
}

output "producer_policy_arn" {
  description = "Attach to the chatbot's IAM user or role (docs/aws-deploy.md, step 6)."
  value       = module.api.producer_policy_arn
}

output "dashboard_name" {
  value = module.monitoring.dashboard_name
}
