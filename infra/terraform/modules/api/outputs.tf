output "url" {
  description = "The HTTP API's base URL."
  value       = aws_apigatewayv2_api.http.api_endpoint
}

output "producer_policy_arn" {
  value = aws_iam_policy.producer.arn
}
