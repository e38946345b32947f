output "url" {
  description = "The HTTP API's base URL."
  value       = aws_apigatewayv2_api.http.api_endpoint
}
