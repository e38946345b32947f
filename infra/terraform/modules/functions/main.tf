# The Lambda functions, their log groups, the SQS event source mappings and
# the weekly schedule. Python 3.12 on x86_64 (`cv-analytics aws package`
# installs manylinux x86_64 wheels); one zip, one handler per function.

locals {
  # Lambda takes a zip of up to 50 MB directly; a bigger one from S3, uploaded
  # beforehand (docs/aws-deploy.md steps 2 and 3). The hash of the local zip
  # updates the functions' code whenever a new build is applied.
  code_in_s3       = var.lambda_s3_bucket != ""
  source_code_hash = filebase64sha256(var.lambda_zip_path)

  # Every function gets every queue URL and table name and the report's
  # addresses, so one settings loader sees one consistent deployment; what each
  # may do is limited by its role.
  environment = {
    AWS_SQS_URL                       = var.queue_urls.analytics
    CV_ANALYTICS_DLQ_URL              = var.queue_urls.analytics_dlq
    AI_JOB_REQUEST_QUEUE_URL          = var.queue_urls.job_request
    CV_ANALYTICS_JOB_REQUEST_DLQ_URL  = var.queue_urls.job_request_dlq
    AI_JOB_RESPONSE_QUEUE_URL         = var.queue_urls.job_response
    CV_ANALYTICS_JOB_RESPONSE_DLQ_URL = var.queue_urls.job_response_dlq
    CV_ANALYTICS_EVENTS_TABLE         = var.table_names.events
    CV_ANALYTICS_INTERACTIONS_TABLE   = var.table_names.interactions
    CV_ANALYTICS_REPORTS_TABLE        = var.table_names.reports
    CV_ANALYTICS_JOBS_TABLE           = var.table_names.jobs
    RECIPIENT_EMAIL                   = var.recipient_email
    SENDER_EMAIL                      = var.sender_email
  }
  llm_environment = {
    CV_ANALYTICS_LLM_URL     = var.llm_url
    CV_ANALYTICS_LLM_MODEL   = var.llm_model
    CV_ANALYTICS_LLM_API_KEY = var.llm_api_key
  }
}

# ----------------------------------------------------------------------- logs --
# Lambda's default log group names, created here to set their retention
# (Lambda would otherwise create them with none, keeping logs forever).

resource "aws_cloudwatch_log_group" "processor" {
  name              = "/aws/lambda/${var.name_prefix}-process-analytics"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "reporter" {
  name              = "/aws/lambda/${var.name_prefix}-weekly-report"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "job_worker" {
  name              = "/aws/lambda/${var.name_prefix}-process-job-requests"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "job_results" {
  name              = "/aws/lambda/${var.name_prefix}-process-job-results"
  retention_in_days = 14
}

resource "aws_cloudwatch_log_group" "http_api" {
  name              = "/aws/lambda/${var.name_prefix}-http-api"
  retention_in_days = 14
}

# ------------------------------------------------------------------ functions --

resource "aws_lambda_function" "processor" {
  function_name    = "${var.name_prefix}-process-analytics"
  description      = "Correlates analytics events from the FIFO queue into interactions."
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "cv_analytics.entrypoints.aws_lambda.process_analytics"
  memory_size      = 512
  timeout          = 30
  role             = var.role_arns.processor
  filename         = local.code_in_s3 ? null : var.lambda_zip_path
  s3_bucket        = local.code_in_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.code_in_s3 ? var.lambda_s3_key : null
  source_code_hash = local.source_code_hash

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.processor.name
  }

  environment {
    variables = local.environment
  }
}

resource "aws_lambda_function" "reporter" {
  function_name    = "${var.name_prefix}-weekly-report"
  description      = "Builds the weekly insights report and emails it through SES."
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "cv_analytics.entrypoints.aws_lambda.weekly_report"
  memory_size      = 512
  timeout          = 60
  role             = var.role_arns.reporter
  filename         = local.code_in_s3 ? null : var.lambda_zip_path
  s3_bucket        = local.code_in_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.code_in_s3 ? var.lambda_s3_key : null
  source_code_hash = local.source_code_hash

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.reporter.name
  }

  environment {
    variables = local.environment
  }
}

resource "aws_lambda_function" "job_worker" {
  function_name    = "${var.name_prefix}-process-job-requests"
  description      = "Runs AI jobs from the job request queue and sends their results to the response queue."
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "cv_analytics.entrypoints.aws_lambda.process_job_requests"
  memory_size      = 3008
  timeout          = 900 # a job may run up to the request queue's 900 s visibility timeout
  role             = var.role_arns.job_worker
  filename         = local.code_in_s3 ? null : var.lambda_zip_path
  s3_bucket        = local.code_in_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.code_in_s3 ? var.lambda_s3_key : null
  source_code_hash = local.source_code_hash

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.job_worker.name
  }

  environment {
    variables = merge(local.environment, local.llm_environment)
  }
}

resource "aws_lambda_function" "job_results" {
  function_name    = "${var.name_prefix}-process-job-results"
  description      = "Applies AI job results from the response queue to the jobs table."
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "cv_analytics.entrypoints.aws_lambda.process_job_results"
  memory_size      = 512
  timeout          = 300
  role             = var.role_arns.job_results
  filename         = local.code_in_s3 ? null : var.lambda_zip_path
  s3_bucket        = local.code_in_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.code_in_s3 ? var.lambda_s3_key : null
  source_code_hash = local.source_code_hash

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.job_results.name
  }

  environment {
    variables = local.environment
  }
}

# The web app through mangum: the same FastAPI app as `cv-analytics serve`.
resource "aws_lambda_function" "http_api" {
  function_name    = "${var.name_prefix}-http-api"
  description      = "The cv-analytics web app (jobs API and the rest) behind the HTTP API."
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "cv_analytics.entrypoints.aws_lambda.http_api"
  memory_size      = 1024 # CPU grows with memory; a cold FastAPI app is CPU-bound
  timeout          = 30   # API Gateway answers 503 after 30 s anyway
  role             = var.role_arns.http_api
  filename         = local.code_in_s3 ? null : var.lambda_zip_path
  s3_bucket        = local.code_in_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.code_in_s3 ? var.lambda_s3_key : null
  source_code_hash = local.source_code_hash

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.http_api.name
  }

  environment {
    variables = merge(local.environment, { CV_ANALYTICS_API_KEYS = var.api_keys }, local.llm_environment)
  }
}

# ------------------------------------------------------------- event sources --
# Batches of up to 10; the handler returns the failed messages only
# ({"batchItemFailures": [...]}) so the rest of a batch is not redelivered.

resource "aws_lambda_event_source_mapping" "analytics" {
  event_source_arn        = var.queue_arns.analytics
  function_name           = aws_lambda_function.processor.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true
}

# The seed's settings: batches of up to 10 gathered for up to 5 s.
resource "aws_lambda_event_source_mapping" "job_request" {
  event_source_arn                   = var.queue_arns.job_request
  function_name                      = aws_lambda_function.job_worker.arn
  batch_size                         = 10
  maximum_batching_window_in_seconds = 5
  function_response_types            = ["ReportBatchItemFailures"]
  enabled                            = true
}

resource "aws_lambda_event_source_mapping" "job_response" {
  event_source_arn        = var.queue_arns.job_response
  function_name           = aws_lambda_function.job_results.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
  enabled                 = true
}

# ------------------------------------------------------------------- schedule --

resource "aws_cloudwatch_event_rule" "weekly_report" {
  name                = "${var.name_prefix}-weekly-report"
  description         = "Runs the weekly report."
  schedule_expression = var.schedule_expression
  state               = "ENABLED"
}

resource "aws_cloudwatch_event_target" "weekly_report" {
  rule      = aws_cloudwatch_event_rule.weekly_report.name
  target_id = "weekly-report"
  arn       = aws_lambda_function.reporter.arn

  # An invocation EventBridge cannot deliver (throttled, the function missing
  # or not permitting it) is retried for up to 6 hours, then lands in the
  # failure queue instead of vanishing.
  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 21600
  }

  dead_letter_config {
    arn = var.queue_arns.report_failures
  }
}

# EventBridge sends as its service principal, so the queue itself must let it,
# and only for the weekly report rule.
data "aws_iam_policy_document" "report_failures" {
  statement {
    sid       = "ScheduleDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arns.report_failures]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.weekly_report.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "report_failures" {
  queue_url = var.queue_urls.report_failures
  policy    = data.aws_iam_policy_document.report_failures.json
}

# EventBridge invokes asynchronously: Lambda retries a failed run twice (the
# reports table keeps a repeat from sending twice), then records the event and
# the error in the failure queue.
resource "aws_lambda_function_event_invoke_config" "reporter" {
  function_name                = aws_lambda_function.reporter.function_name
  qualifier                    = "$LATEST"
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = var.queue_arns.report_failures
    }
  }
}

resource "aws_lambda_permission" "weekly_report" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.reporter.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.weekly_report.arn
}
