# streamkit: Azure Application Gateway v2 in front of the SSE app (hop: client -> gateway -> app).
# Replace nothing here: pass your subnet, backends, certificate and identity as inputs (see README.md).
# Every setting below that differs from the Azure default says why.
# Proven by: tests/static/test_terraform.py::test_budget_invariants_hold[modules/azure-appgw]
#            tests/static/test_terraform.py::test_checkov_offline
# The streaming contract itself (pings, no buffering) is proven through local proxies in tests/e2e/;
# nothing here runs against Azure in the test suite.

locals {
  # Unconfirmed: Microsoft documents no idle time for the gateway's pooled backend connections.
  # The module asks the app to keep connections longer than the longest timer the gateway runs on
  # a backend connection (request_timeout) plus a margin, so the gateway is the side that gives up
  # first. Check the gateway's access log for 502s on reused connections after you deploy.
  keepalive_margin_seconds = 15
  app_keepalive_seconds    = var.request_timeout_seconds + local.keepalive_margin_seconds

  frontend_ip_name  = "${var.name}-frontend"
  frontend_port     = "${var.name}-https"
  listener_name     = "${var.name}-https"
  backend_pool_name = "${var.name}-app"
  backend_settings  = "${var.name}-app"
  probe_name        = "${var.name}-ready"
  certificate_name  = "${var.name}-tls"
}

resource "azurerm_public_ip" "this" {
  name                = "${var.name}-ip"
  resource_group_name = var.resource_group_name
  location            = var.location
  allocation_method   = "Static"
  sku                 = "Standard"
  tags                = var.tags
}

resource "azurerm_application_gateway" "this" {
  #checkov:skip=CKV_AZURE_120:A WAF policy is the owner's decision: set sku_name = "WAF_v2" and attach a firewall policy; the SSE settings are the same.
  name                = var.name
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  sku {
    name = var.sku_name
    tier = var.sku_name
  }

  autoscale_configuration {
    min_capacity = var.min_capacity
    max_capacity = var.max_capacity
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [var.identity_id]
  }

  global {
    # The gateway forwards each chunk as the app writes it instead of collecting the response.
    # Microsoft's SSE guide: "The Response Buffers on Application Gateway resource should be disabled."
    # Default: true
    # https://learn.microsoft.com/azure/application-gateway/use-server-sent-events
    # https://learn.microsoft.com/azure/application-gateway/proxy-buffers
    response_buffering_enabled = false

    # Request bodies (prompts) may be buffered; that does not delay the response stream.
    # Explicit on purpose: same as the default, required by the provider inside `global`.
    # Default: true
    # https://learn.microsoft.com/azure/application-gateway/proxy-buffers
    request_buffering_enabled = true
  }

  # TLS 1.2+ with strong ciphers only; unrelated to streaming, a hardening default of the kit.
  # Default: the gateway's older predefined policy
  # https://learn.microsoft.com/azure/application-gateway/application-gateway-ssl-policy-overview
  ssl_policy {
    policy_type = "Predefined"
    policy_name = "AppGwSslPolicy20220101S"
  }

  gateway_ip_configuration {
    name      = "${var.name}-gateway"
    subnet_id = var.subnet_id
  }

  frontend_ip_configuration {
    name                 = local.frontend_ip_name
    public_ip_address_id = azurerm_public_ip.this.id
  }

  frontend_port {
    name = local.frontend_port
    port = 443
  }

  ssl_certificate {
    name                = local.certificate_name
    key_vault_secret_id = var.ssl_certificate_secret_id
  }

  http_listener {
    name                           = local.listener_name
    frontend_ip_configuration_name = local.frontend_ip_name
    frontend_port_name             = local.frontend_port
    protocol                       = "Https"
    ssl_certificate_name           = local.certificate_name
  }

  backend_address_pool {
    name  = local.backend_pool_name
    fqdns = var.backend_addresses
  }

  probe {
    name                                      = local.probe_name
    protocol                                  = var.backend_protocol
    pick_host_name_from_backend_http_settings = true
    # The app's readiness endpoint: 503 while draining, so no new stream lands on a leaving backend.
    # Default: none (a probe needs a path)
    # https://learn.microsoft.com/azure/application-gateway/application-gateway-probe-overview
    path = var.health_check_path
    # Required by the provider (no default): a draining app leaves rotation after about
    # 2 x 5 s, well inside drain_seconds.
    # https://learn.microsoft.com/azure/application-gateway/application-gateway-probe-overview
    interval            = 5
    timeout             = 5
    unhealthy_threshold = 2
    match {
      status_code = ["200"]
    }
  }

  backend_http_settings {
    name                                = local.backend_settings
    port                                = var.backend_port
    protocol                            = var.backend_protocol
    cookie_based_affinity               = "Disabled"
    pick_host_name_from_backend_address = true
    probe_name                          = local.probe_name

    # How long the gateway waits on the backend. Microsoft's SSE guide: it must "exceed the idle
    # time between events", else the gateway ends the connection early; pings every
    # ping_interval_seconds keep the gap short. Unconfirmed whether it also caps the whole
    # response: if streams end at this many seconds, raise it to max_stream_seconds.
    # Default: 30
    # https://learn.microsoft.com/azure/application-gateway/use-server-sent-events
    request_timeout = var.request_timeout_seconds

    # A removed backend keeps its open streams this long. The app ends its streams with a terminal
    # event within drain_seconds of SIGTERM, so this must be at least drain_seconds.
    # Default: disabled
    # https://learn.microsoft.com/azure/application-gateway/configuration-http-settings#connection-draining
    connection_draining {
      enabled           = true
      drain_timeout_sec = var.drain_timeout_seconds
    }
  }

  request_routing_rule {
    name                       = "${var.name}-app"
    priority                   = 100
    rule_type                  = "Basic"
    http_listener_name         = local.listener_name
    backend_address_pool_name  = local.backend_pool_name
    backend_http_settings_name = local.backend_settings
  }
}
