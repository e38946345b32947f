# Settings from src/cv_analytics/queues/presets.py, as in infra/template.yaml.
# Analytics is FIFO: per-session ordering (MessageGroupId) and a 5-minute
# deduplication window. The jobs queues are standard queues (at-least-once, no
# groups). 256 KiB messages, the limit every cv-analytics backend enforces.
# Dead-letter queues keep messages 14 days, SQS's maximum: time to inspect and
# redrive; a message moves there after 3 receives.

resource "aws_sqs_queue" "analytics_dlq" {
  name                        = "${var.name_prefix}-analytics-dlq.fifo"
  fifo_queue                  = true
  content_based_deduplication = true
  message_retention_seconds   = 1209600
  visibility_timeout_seconds  = 300
  max_message_size            = 262144
  delay_seconds               = 0
  receive_wait_time_seconds   = 0
}

resource "aws_sqs_queue" "analytics" {
  name                        = "${var.name_prefix}-analytics.fifo"
  fifo_queue                  = true
  content_based_deduplication = true
  message_retention_seconds   = 345600 # 4 days
  # At least six times the processor's 30 s timeout, as AWS advises for an
  # SQS event source, so a retried batch is not handed out twice meanwhile.
  visibility_timeout_seconds = 300
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 0
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.analytics_dlq.arn
    maxReceiveCount     = 3
  })
}

resource "aws_sqs_queue" "job_request_dlq" {
  name                       = "${var.name_prefix}-ai-job-request-dlq"
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 900
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 20
}

resource "aws_sqs_queue" "job_request" {
  name                       = "${var.name_prefix}-ai-job-request"
  message_retention_seconds  = 1209600 # 14 days
  visibility_timeout_seconds = 900     # a job may run up to 15 minutes
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 20 # long polling
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.job_request_dlq.arn
    maxReceiveCount     = 3
  })
}

resource "aws_sqs_queue" "job_response_dlq" {
  name                       = "${var.name_prefix}-ai-job-response-dlq"
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 300
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 0
}

resource "aws_sqs_queue" "job_response" {
  name                       = "${var.name_prefix}-ai-job-response"
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 300
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 0
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.job_response_dlq.arn
    maxReceiveCount     = 3
  })
}

# Where a failed weekly report lands, from both sides: EventBridge's dead-letter
# queue (an invocation it could not deliver after its retries) and the report
# function's on-failure destination (a run that still failed after Lambda's two
# retries). A standard queue: EventBridge refuses FIFO targets. 14 days, to read
# the reason and rerun the report. (Its queue policy, which names the schedule's
# rule, is in the functions module beside the rule.)
resource "aws_sqs_queue" "report_failures" {
  name                       = "${var.name_prefix}-weekly-report-failures"
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = 30
  max_message_size           = 262144
  delay_seconds              = 0
  receive_wait_time_seconds  = 0
}
