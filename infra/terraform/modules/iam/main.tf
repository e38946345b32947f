# One role per function, least privilege: every statement names its actions
# and the ARNs they apply to, as in infra/template.yaml. No
# logs:CreateLogGroup: the functions module creates the log groups.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # SES authorizes a send against the sender's verified identity (the domain
  # when sender_identity is set) and, in the SES sandbox, the recipient's too.
  ses_identity_arn_prefix = "arn:${data.aws_partition.current.partition}:ses:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:identity"
  sender_identity         = coalesce(var.sender_identity, var.sender_email)
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

# ------------------------------------------------------------------ processor --

resource "aws_iam_role" "processor" {
  name               = "${var.name_prefix}-process-analytics"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "processor" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arns.processor}:*"]
  }

  # What the SQS event source mapping does with the function's role, plus
  # ChangeMessageVisibility to retry a message sooner.
  statement {
    sid = "ConsumeAnalyticsQueue"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.queue_arns.analytics]
  }

  # A message on its last receive is moved to the DLQ by the processor itself,
  # with the failure reason as an attribute.
  statement {
    sid       = "DeadLetterWithReason"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arns.analytics_dlq]
  }

  statement {
    sid = "PendingEvents"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:Scan", # the orphan sweep; the table holds only unmatched events
    ]
    resources = [var.table_arns.events]
  }

  statement {
    sid = "WriteInteractions"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
    ]
    resources = [var.table_arns.interactions]
  }
}

resource "aws_iam_role_policy" "processor" {
  name   = "process-analytics"
  role   = aws_iam_role.processor.id
  policy = data.aws_iam_policy_document.processor.json
}

# ------------------------------------------------------------------- reporter --

resource "aws_iam_role" "reporter" {
  name               = "${var.name_prefix}-weekly-report"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "reporter" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arns.reporter}:*"]
  }

  statement {
    sid       = "ReadInteractions"
    actions   = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"]
    resources = [var.table_arns.interactions, "${var.table_arns.interactions}/index/week-index"]
  }

  statement {
    sid       = "SendOnceRecords"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
    resources = [var.table_arns.reports]
  }

  statement {
    sid     = "SendReport"
    actions = ["ses:SendRawEmail"]
    resources = [
      "${local.ses_identity_arn_prefix}/${local.sender_identity}",
      "${local.ses_identity_arn_prefix}/${var.recipient_email}",
    ]
  }

  # Lambda sends the on-failure record with the function's own role.
  statement {
    sid       = "ReportFailures"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arns.report_failures]
  }
}

resource "aws_iam_role_policy" "reporter" {
  name   = "weekly-report"
  role   = aws_iam_role.reporter.id
  policy = data.aws_iam_policy_document.reporter.json
}

# ----------------------------------------------------------------- job worker --
# Opening a queue reads its attributes and finds its dead-letter queue from the
# redrive policy, so a function that only sends to a queue still reads its
# DLQ's attributes.

resource "aws_iam_role" "job_worker" {
  name               = "${var.name_prefix}-process-job-requests"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "job_worker" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arns.job_worker}:*"]
  }

  statement {
    sid = "ConsumeJobRequests"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.queue_arns.job_request]
  }

  # SendMessage: a request on its last receive is dead-lettered by the worker
  # itself, with its reason. ReceiveMessage and ChangeMessageVisibility: the
  # dead-letter sweep peeks at the queue for requests SQS dead-lettered by
  # itself (a worker killed on the last receive) to mark their jobs dead.
  statement {
    sid = "DeadLetterJobRequests"
    actions = [
      "sqs:SendMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ReceiveMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.queue_arns.job_request_dlq]
  }

  statement {
    sid       = "SendJobResults"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arns.job_response]
  }

  statement {
    sid       = "FindJobResultsDeadLetterQueue"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arns.job_response_dlq]
  }

  # Claim a job, heartbeat, progress, cancellation: each a read, then a put on
  # the condition that the version read is still the stored one.
  statement {
    sid       = "RunJobs"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.table_arns.jobs]
  }

  # The analytics.report job type closes out unanswered queries (the
  # processor's orphan sweep) and reads the week's interactions.
  statement {
    sid = "ReportJobPendingEvents"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:Scan",
    ]
    resources = [var.table_arns.events]
  }

  statement {
    sid = "ReportJobInteractions"
    actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:Query",
    ]
    resources = [var.table_arns.interactions, "${var.table_arns.interactions}/index/week-index"]
  }
}

resource "aws_iam_role_policy" "job_worker" {
  name   = "process-job-requests"
  role   = aws_iam_role.job_worker.id
  policy = data.aws_iam_policy_document.job_worker.json
}

# ---------------------------------------------------------------- job results --

resource "aws_iam_role" "job_results" {
  name               = "${var.name_prefix}-process-job-results"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "job_results" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arns.job_results}:*"]
  }

  statement {
    sid = "ConsumeJobResults"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [var.queue_arns.job_response]
  }

  statement {
    sid       = "DeadLetterJobResultsWithReason"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arns.job_response_dlq]
  }

  # Apply a result: a read, then a conditional put; a finished job is never written again.
  statement {
    sid       = "ApplyJobResults"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.table_arns.jobs]
  }
}

resource "aws_iam_role_policy" "job_results" {
  name   = "process-job-results"
  role   = aws_iam_role.job_results.id
  policy = data.aws_iam_policy_document.job_results.json
}

# ------------------------------------------------------------------- HTTP API --
# The whole web app: the jobs API, event ingestion (sends to the analytics
# queue) and the readiness check (the analytics queue's attributes, a read of
# the interactions table).

resource "aws_iam_role" "http_api" {
  name               = "${var.name_prefix}-http-api"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "http_api" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${var.log_group_arns.http_api}:*"]
  }

  # Submit (a job and its idempotency key in one transaction of two puts),
  # read, list by the indexes, cancel; DeleteItem frees the key of a job that
  # could not be enqueued.
  statement {
    sid     = "Jobs"
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"]
    resources = [
      var.table_arns.jobs,
      "${var.table_arns.jobs}/index/entity-created-index",
      "${var.table_arns.jobs}/index/status-created-index",
      "${var.table_arns.jobs}/index/type-created-index",
    ]
  }

  statement {
    sid       = "SendJobRequests"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arns.job_request]
  }

  statement {
    sid       = "SendAnalyticsEvents"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arns.analytics]
  }

  statement {
    sid       = "FindDeadLetterQueues"
    actions   = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arns.job_request_dlq, var.queue_arns.analytics_dlq]
  }

  statement {
    sid       = "ReadInteractions"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [var.table_arns.interactions, "${var.table_arns.interactions}/index/week-index"]
  }
}

resource "aws_iam_role_policy" "http_api" {
  name   = "http-api"
  role   = aws_iam_role.http_api.id
  policy = data.aws_iam_policy_document.http_api.json
}
