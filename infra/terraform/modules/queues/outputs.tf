output "urls" {
  description = "Each queue's URL: analytics, analytics_dlq, job_request, job_request_dlq, job_response, job_response_dlq, report_failures."
  value = {
    analytics        = aws_sqs_queue.analytics.url
    analytics_dlq    = aws_sqs_queue.analytics_dlq.url
    job_request      = aws_sqs_queue.job_request.url
    job_request_dlq  = aws_sqs_queue.job_request_dlq.url
    job_response     = aws_sqs_queue.job_response.url
    job_response_dlq = aws_sqs_queue.job_response_dlq.url
    report_failures  = aws_sqs_queue.report_failures.url
  }
}

output "arns" {
  description = "Each queue's ARN, by the same keys."
  value = {
    analytics        = aws_sqs_queue.analytics.arn
    analytics_dlq    = aws_sqs_queue.analytics_dlq.arn
    job_request      = aws_sqs_queue.job_request.arn
    job_request_dlq  = aws_sqs_queue.job_request_dlq.arn
    job_response     = aws_sqs_queue.job_response.arn
    job_response_dlq = aws_sqs_queue.job_response_dlq.arn
    report_failures  = aws_sqs_queue.report_failures.arn
  }
}

output "names" {
  description = "Each queue's name, by the same keys (the alarms' QueueName dimension)."
  value = {
    analytics        = aws_sqs_queue.analytics.name
    analytics_dlq    = aws_sqs_queue.analytics_dlq.name
    job_request      = aws_sqs_queue.job_request.name
    job_request_dlq  = aws_sqs_queue.job_request_dlq.name
    job_response     = aws_sqs_queue.job_response.name
    job_response_dlq = aws_sqs_queue.job_response_dlq.name
    report_failures  = aws_sqs_queue.report_failures.name
  }
}
