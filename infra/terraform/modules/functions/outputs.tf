output "names" {
  description = "Each function's name: processor, reporter, job_worker, job_results, http_api."
  value = {
    processor   = aws_lambda_function.processor.function_name
    reporter    = aws_lambda_function.reporter.function_name
    job_worker  = aws_lambda_function.job_worker.function_name
    job_results = aws_lambda_function.job_results.function_name
    http_api    = aws_lambda_function.http_api.function_name
  }
}

output "arns" {
  description = "Each function's ARN, by the same keys."
  value = {
    processor   = aws_lambda_function.processor.arn
    reporter    = aws_lambda_function.reporter.arn
    job_worker  = aws_lambda_function.job_worker.arn
    job_results = aws_lambda_function.job_results.arn
    http_api    = aws_lambda_function.http_api.arn
  }
}

output "log_group_arns" {
  description = "Each function's log group ARN, by the same keys."
  value = {
    processor   = aws_cloudwatch_log_group.processor.arn
    reporter    = aws_cloudwatch_log_group.reporter.arn
    job_worker  = aws_cloudwatch_log_group.job_worker.arn
    job_results = aws_cloudwatch_log_group.job_results.arn
    http_api    = aws_cloudwatch_log_group.http_api.arn
  }
}

output "weekly_report_rule_name" {
  value = aws_cloudwatch_event_rule.weekly_report.name
}
