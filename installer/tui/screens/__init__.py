"""One module per step of the install wizard, in the order the user meets them:
welcome → hosts (+ host form) → preflight → settings → review (+ confirmation) → progress → done."""
