# The alarm topic and the CloudWatch alarms of infra/template.yaml. Lambda
# metrics are only emitted when something runs, and SQS stops reporting an
# idle queue after six hours: missing data is not a problem.
# Every function has an Errors, a Throttles and a Duration (80% of its timeout)
# alarm; every alarm notifies the topic when it fires and when it clears.

resource "aws_sns_topic" "alarms" {
  name = "${var.name_prefix}-alarms"
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "process_analytics_errors" {
  alarm_name          = "${var.name_prefix}-process-analytics-errors"
  alarm_description   = "The analytics processor raised (its whole batch is redelivered)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.function_names.processor }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_analytics_throttles" {
  alarm_name          = "${var.name_prefix}-process-analytics-throttles"
  alarm_description   = "The analytics processor was throttled (account concurrency exhausted)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.function_names.processor }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_analytics_duration" {
  alarm_name          = "${var.name_prefix}-process-analytics-duration"
  alarm_description   = "An analytics processor invocation took over 80% of its 30 s timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.function_names.processor }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 24000 # milliseconds: 80% of the 30 s timeout
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "weekly_report_errors" {
  alarm_name          = "${var.name_prefix}-weekly-report-errors"
  alarm_description   = "The weekly report failed (Lambda retries it twice, then gives up)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.function_names.reporter }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "weekly_report_throttles" {
  alarm_name          = "${var.name_prefix}-weekly-report-throttles"
  alarm_description   = "The weekly report was throttled."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.function_names.reporter }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "weekly_report_duration" {
  alarm_name          = "${var.name_prefix}-weekly-report-duration"
  alarm_description   = "A weekly report invocation took over 80% of its 60 s timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.function_names.reporter }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 48000 # milliseconds: 80% of the 60 s timeout
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_requests_errors" {
  alarm_name          = "${var.name_prefix}-process-job-requests-errors"
  alarm_description   = "The job worker raised (its whole batch is redelivered)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.function_names.job_worker }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_results_errors" {
  alarm_name          = "${var.name_prefix}-process-job-results-errors"
  alarm_description   = "The job results processor raised (its whole batch is redelivered)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.function_names.job_results }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "analytics_dlq_not_empty" {
  alarm_name          = "${var.name_prefix}-analytics-dlq-not-empty"
  alarm_description   = "Analytics events were dead-lettered."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.queue_names.analytics_dlq }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ai_job_request_dlq_not_empty" {
  alarm_name          = "${var.name_prefix}-ai-job-request-dlq-not-empty"
  alarm_description   = "AI job requests were dead-lettered."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.queue_names.job_request_dlq }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ai_job_response_dlq_not_empty" {
  alarm_name          = "${var.name_prefix}-ai-job-response-dlq-not-empty"
  alarm_description   = "AI job responses were dead-lettered."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.queue_names.job_response_dlq }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "analytics_queue_backlog" {
  alarm_name          = "${var.name_prefix}-analytics-queue-backlog"
  alarm_description   = "The oldest analytics event has waited over 5 minutes."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_names.analytics }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ai_job_request_queue_backlog" {
  alarm_name          = "${var.name_prefix}-ai-job-request-queue-backlog"
  alarm_description   = "The oldest AI job request has waited over 5 minutes."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_names.job_request }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ai_job_request_queue_depth" {
  alarm_name          = "${var.name_prefix}-ai-job-request-queue-depth"
  alarm_description   = "More AI job requests wait than the job_request_queue_depth_threshold variable allows."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.queue_names.job_request }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.job_request_queue_depth_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_requests_throttles" {
  alarm_name          = "${var.name_prefix}-process-job-requests-throttles"
  alarm_description   = "The job worker was throttled (account concurrency exhausted)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.function_names.job_worker }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_requests_duration" {
  alarm_name          = "${var.name_prefix}-process-job-requests-duration"
  alarm_description   = "A job worker invocation took over 80% of its 900 s timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.function_names.job_worker }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 720000 # milliseconds
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_results_throttles" {
  alarm_name          = "${var.name_prefix}-process-job-results-throttles"
  alarm_description   = "The job results processor was throttled (account concurrency exhausted)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.function_names.job_results }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "process_job_results_duration" {
  alarm_name          = "${var.name_prefix}-process-job-results-duration"
  alarm_description   = "A job results processor invocation took over 80% of its 300 s timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.function_names.job_results }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 240000 # milliseconds
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "http_api_errors" {
  alarm_name          = "${var.name_prefix}-http-api-errors"
  alarm_description   = "The HTTP API function raised (callers got a 5xx answer)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.function_names.http_api }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "http_api_throttles" {
  alarm_name          = "${var.name_prefix}-http-api-throttles"
  alarm_description   = "The HTTP API function was throttled (account concurrency exhausted)."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = var.function_names.http_api }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "http_api_duration" {
  alarm_name          = "${var.name_prefix}-http-api-duration"
  alarm_description   = "A HTTP API function invocation took over 80% of its 30 s timeout."
  namespace           = "AWS/Lambda"
  metric_name         = "Duration"
  dimensions          = { FunctionName = var.function_names.http_api }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 24000 # milliseconds
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "ai_job_response_queue_backlog" {
  alarm_name          = "${var.name_prefix}-ai-job-response-queue-backlog"
  alarm_description   = "The oldest AI job result has waited over 5 minutes."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_names.job_response }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "report_failures_not_empty" {
  alarm_name          = "${var.name_prefix}-weekly-report-failures-not-empty"
  alarm_description   = "A weekly report run failed or could not be delivered (the message says which and why)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.queue_names.report_failures }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ------------------------------------------------------------------ dashboard --
locals {
  function_list = [
    var.function_names.processor,
    var.function_names.reporter,
    var.function_names.job_worker,
    var.function_names.job_results,
    var.function_names.http_api,
  ]
  pipeline_queues    = [var.queue_names.analytics, var.queue_names.job_request, var.queue_names.job_response]
  dead_letter_queues = [var.queue_names.analytics_dlq, var.queue_names.job_request_dlq, var.queue_names.job_response_dlq, var.queue_names.report_failures]
  table_list         = [var.table_names.events, var.table_names.interactions, var.table_names.reports, var.table_names.jobs]

  # The template's nine widgets: title, statistic, and the metrics (namespace,
  # metric, dimension, the resources it shows), three to a row.
  widgets = [
    ["SQS messages sent", "Sum", "AWS/SQS", "NumberOfMessagesSent", "QueueName", local.pipeline_queues],
    ["SQS age of oldest message (s)", "Maximum", "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.pipeline_queues],
    ["Dead-letter queue depth", "Maximum", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.dead_letter_queues],
    ["Lambda invocations", "Sum", "AWS/Lambda", "Invocations", "FunctionName", local.function_list],
    ["Lambda errors", "Sum", "AWS/Lambda", "Errors", "FunctionName", local.function_list],
    ["Lambda throttles", "Sum", "AWS/Lambda", "Throttles", "FunctionName", local.function_list],
    ["Lambda duration (ms, maximum)", "Maximum", "AWS/Lambda", "Duration", "FunctionName", local.function_list],
    ["DynamoDB consumed read units", "Sum", "AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", local.table_list],
    ["DynamoDB consumed write units", "Sum", "AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", local.table_list],
  ]
}

data "aws_region" "current" {}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in local.widgets : {
        type   = "metric"
        x      = (index % 3) * 8
        y      = floor(index / 3) * 6
        width  = 8
        height = 6
        properties = {
          title   = widget[0]
          region  = data.aws_region.current.name
          stat    = widget[1]
          period  = 300
          view    = "timeSeries"
          metrics = [for resource in widget[5] : [widget[2], widget[3], widget[4], resource]]
        }
      }
    ]
  })
}

# --------------------------------------------------------------------- budget --
# The account's whole monthly cost (a filter on the Project tag would need that
# cost allocation tag activated first, and would read zero until then). The
# alert needs an address: without alarm_email the budget is only visible in the
# console.
resource "aws_budgets_budget" "monthly" {
  name         = "${var.name_prefix}-monthly"
  budget_type  = "COST"
  time_unit    = "MONTHLY"
  limit_amount = tostring(var.monthly_budget_usd)
  limit_unit   = "USD"

  dynamic "notification" {
    for_each = var.alarm_email == "" ? [] : [var.alarm_email]
    content {
      notification_type          = "ACTUAL"
      comparison_operator        = "GREATER_THAN"
      threshold                  = 80
      threshold_type             = "PERCENTAGE"
      subscriber_email_addresses = [notification.value]
    }
  }
}
