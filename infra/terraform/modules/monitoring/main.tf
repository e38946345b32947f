# The alarm topic and the CloudWatch alarms of infra/template.yaml. Lambda
# metrics are only emitted when something runs, and SQS stops reporting an
# idle queue after six hours: missing data is not a problem.
#
# The jobs functions get an Errors alarm each, and no more: every alarm past
# CloudWatch's ten free ones costs $0.10 a month, and a job's own failures show
# in the dead-letter queue's alarm. (The HTTP API function's errors are API
# Gateway 5xx answers to the caller, who retries.)

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
}
