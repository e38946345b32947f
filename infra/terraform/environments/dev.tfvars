# terraform apply -var-file=environments/dev.tfvars
# api_keys is secret: export TF_VAR_api_keys=... rather than writing it here.
environment     = "dev"
region          = "eu-west-1"
name_prefix     = "cv-analytics-dev"
lambda_zip_path = "../../dist/cv-analytics-lambda.zip"
recipient_email = "you@example.com"
sender_email    = "reports@example.com"
alarm_email     = ""

job_request_queue_depth_threshold = 100
