output "role_arns" {
  description = "Each function's role ARN: processor, reporter, job_worker, job_results, http_api."
  value = {
    processor   = aws_iam_role.processor.arn
    reporter    = aws_iam_role.reporter.arn
    job_worker  = aws_iam_role.job_worker.arn
    job_results = aws_iam_role.job_results.arn
    http_api    = aws_iam_role.http_api.arn
  }
  # A function's SQS event source is refused until its role may receive from
  # the queue: nothing uses a role before its policy is in place.
  depends_on = [
    aws_iam_role_policy.processor,
    aws_iam_role_policy.reporter,
    aws_iam_role_policy.job_worker,
    aws_iam_role_policy.job_results,
    aws_iam_role_policy.http_api,
  ]
}
