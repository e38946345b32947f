# The CloudFormation template's parameters, snake_cased (NamePrefix is
# name_prefix), with the same defaults; CodeBucket and CodeKey are
# lambda_zip_path here. region is Terraform's own.

variable "environment" {
  type        = string
  default     = "prod"
  description = "The deployment's environment, tagged on every resource (Environment)."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "region" {
  type        = string
  description = "The AWS region to deploy to."
}

variable "name_prefix" {
  type        = string
  default     = "cv-analytics"
  description = "Prefix of every resource name, so several deployments can share an account."

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix: a letter, then at most 31 letters, digits and hyphens."
  }
}

variable "lambda_zip_path" {
  type        = string
  description = "The Lambda deployment package built by `cv-analytics aws package` (dist/cv-analytics-lambda.zip)."
}

variable "lambda_s3_bucket" {
  type        = string
  default     = ""
  description = "Set (with lambda_s3_key) when the package passes Lambda's 50 MB direct upload: the bucket you copied it to."
}

variable "lambda_s3_key" {
  type        = string
  default     = ""
  description = "The package's key in lambda_s3_bucket (a new key per build, as `cv-analytics aws package` suggests)."
}

variable "recipient_email" {
  type        = string
  description = "Who receives the weekly report."
}

variable "sender_email" {
  type        = string
  description = "The report's From address; it, or its domain, must be a verified SES identity."
}

variable "sender_identity" {
  type        = string
  default     = ""
  description = "The verified SES identity covering sender_email when it is the domain (example.com); empty means sender_email."
}

variable "schedule_expression" {
  type        = string
  default     = "cron(0 7 ? * MON *)"
  description = "When the weekly report runs, in EventBridge syntax (UTC). The default is Mondays 07:00."
}

variable "alarm_email" {
  type        = string
  default     = ""
  description = "Optional address subscribed to the alarm topic (confirm the subscription email) and alerted by the budget."
}

variable "api_keys" {
  type        = string
  sensitive   = true
  description = "The keys the HTTP API accepts in x-api-key, comma-separated (CV_ANALYTICS_API_KEYS); pass it as TF_VAR_api_keys."

  validation {
    condition     = length(var.api_keys) > 0
    error_message = "api_keys: the HTTP API refuses every request without keys."
  }
}

variable "llm_url" {
  type        = string
  default     = ""
  description = "Optional OpenAI-compatible chat-completions endpoint for the job types and the assistant."
}

variable "llm_model" {
  type        = string
  default     = ""
  description = "The model to ask at llm_url."
}

variable "llm_api_key" {
  type        = string
  default     = ""
  sensitive   = true
  description = "The bearer key for llm_url, if it needs one."
}

variable "job_request_queue_depth_threshold" {
  type        = number
  default     = 100
  description = "The job request queue's depth alarm fires above this many waiting requests."

  validation {
    condition     = var.job_request_queue_depth_threshold >= 1
    error_message = "job_request_queue_depth_threshold must be at least 1."
  }
}

variable "monthly_budget_usd" {
  type        = number
  default     = 5
  description = "The monthly cost budget in USD; alarm_email is alerted when actual cost passes 80% of it."

  validation {
    condition     = var.monthly_budget_usd >= 1
    error_message = "monthly_budget_usd must be at least 1."
  }
}
