# Terraform checks (tests/static/test_terraform.py) read .tf files with streamkit lint's own reader
# (python-hcl2, in the kit's `check` extra). checkov gets its own venv, pinned in
# tests/static/requirements-checkov.txt: it depends on bc-python-hcl2, which installs the same
# top-level `hcl2` package as python-hcl2 and would shadow it.
# A terraform (or tofu) binary is optional: without one the fmt/validate tests skip and say so.

TF_VENVS := checkov
TF_VENV_STAMPS := $(addprefix $(STAMPS)/venv-,$(TF_VENVS))

$(TF_VENV_STAMPS): $(STAMPS)/venv-%: tests/static/requirements-%.txt | $(STAMPS)
	test -x .venv-$*/bin/python || $(PYTHON) -m venv .venv-$*
	.venv-$*/bin/pip install -q -r $<
	touch $@

deps: $(TF_VENV_STAMPS)

clean: clean-terraform-venvs

.PHONY: clean-terraform-venvs
clean-terraform-venvs:
	rm -rf $(addprefix .venv-,$(TF_VENVS))
