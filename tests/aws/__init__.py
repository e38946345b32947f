"""AWS infrastructure: the CloudFormation template, bootstrap, the Lambda package."""
