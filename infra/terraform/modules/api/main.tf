# The API Gateway HTTP API: one Lambda proxy integration (payload format 2.0,
# which mangum reads) for the jobs routes and, through $default, every other
# path of the web app.

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http-api"
  description   = "The cv-analytics web app and AI jobs API."
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_integration" "http_api" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = var.http_api_function_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 30000
}

resource "aws_apigatewayv2_route" "route" {
  for_each = toset(["POST /jobs", "GET /jobs", "GET /jobs/{jobId}", "POST /jobs/{jobId}/cancel", "$default"])

  api_id    = aws_apigatewayv2_api.http.id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.http_api.id}"
}

# API Gateway's access log of the HTTP API: one JSON line per request.
resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name_prefix}-http-api"
  retention_in_days = 14
}

# Throttled so a runaway client costs a bounded amount: 50 requests/s, bursts of 100.
resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_rate_limit  = 50
    throttling_burst_limit = 100
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId        = "$context.requestId"
      ip               = "$context.identity.sourceIp"
      time             = "$context.requestTime"
      method           = "$context.httpMethod"
      path             = "$context.path"
      status           = "$context.status"
      latencyMs        = "$context.responseLatency"
      integrationError = "$context.integrationErrorMessage"
    })
  }
}

resource "aws_lambda_permission" "http_api" {
  action        = "lambda:InvokeFunction"
  function_name = var.http_api_function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}

# For the chatbot's own identity (an IAM user or role outside this stack): send
# analytics events, and call the jobs API's routes. The stack creates no user
# and no access key; docs/aws-deploy.md says how to attach this.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "SendAnalyticsEvents"
    actions   = ["sqs:SendMessage", "sqs:GetQueueUrl"]
    resources = [var.analytics_queue_arn]
  }

  statement {
    sid     = "InvokeJobsApi"
    actions = ["execute-api:Invoke"]
    resources = [
      "${aws_apigatewayv2_api.http.execution_arn}/$default/POST/jobs",
      "${aws_apigatewayv2_api.http.execution_arn}/$default/GET/jobs",
      "${aws_apigatewayv2_api.http.execution_arn}/$default/GET/jobs/*",
      "${aws_apigatewayv2_api.http.execution_arn}/$default/POST/jobs/*/cancel",
    ]
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name_prefix}-producer"
  description = "Send cv-analytics events to the analytics queue and call the jobs API."
  policy      = data.aws_iam_policy_document.producer.json
}
