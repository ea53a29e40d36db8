resource "aws_cloudfront_distribution" "edge" {
  enabled = true
}
