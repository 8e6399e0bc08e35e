// Grammar from distribution-spec v1.1.1 ("Pulling manifests").
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// distribution caps repository names at 255 characters.
const MAX_NAME = 255;

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME && NAME_RE.test(name);
}

export function isTag(ref: string): boolean {
  return TAG_RE.test(ref);
}

/** Host as clients write it in image references: has a dot or a port, or is localhost. */
export function looksLikeRegistryHost(component: string): boolean {
  return component === 'localhost' || /[.:]/.test(component);
}
