// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_epc: unbinding the functions of a controller that goes away
 * (docs/epc.md 10.1).
 *
 * In Linux 6.1 a function is bound to a controller by a configfs symlink:
 * controllers/<epc>/<function>, or functions/<driver>/<function>/primary
 * (or secondary)/<epc>.  Only removing that link unbinds the function
 * (configfs calls pci-ep-cfs's drop_link).  When the controller's driver is
 * unbound, pci_epc_destroy() unregisters the controller's configfs group
 * with the links still there: configfs neither calls drop_link nor lets go
 * of the function, so the function keeps running against a freed
 * controller and can be neither linked again nor removed (EBUSY) until
 * reboot.  The core has no call that unbinds a function from the
 * controller's side, and pci_driver.remove() cannot refuse, so before the
 * controller is destroyed this driver removes the links itself as rm(1)
 * would: vfs_unlink() on configfs's own dentries, which runs configfs's
 * unlink and so pci-ep-cfs's drop_link, exactly as for a user.
 *
 * pci-ep-cfs warns (WARN_ON_ONCE) when a link is dropped while the
 * controller is started, so the controller is stopped first through its
 * group's own "start" attribute, which also clears the group's flag.
 */

#include <linux/configfs.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/pci-epc.h>
#include <linux/pci-epf.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/user_namespace.h>

#include "pciefw_epc.h"

/* What a child of a configfs directory must be to be picked. */
typedef bool (*pfe_pick_t)(struct dentry *child, const char *arg);

/* Any link (those in the controller's own directory: to functions). */
static bool pfe_any_link(struct dentry *child, const char *unused)
{
	return d_is_symlink(child);
}

/*
 * A link to controller @suffix ("/controllers/<epc>"): configfs keeps the
 * path it was made with, "../../.../pci_ep/controllers/<epc>".
 */
static bool pfe_link_to(struct dentry *child, const char *suffix)
{
	const char *path = d_inode(child)->i_link;
	size_t len, slen = strlen(suffix);

	if (!d_is_symlink(child) || !path)
		return false;
	len = strlen(path);
	return len >= slen && !strcmp(path + len - slen, suffix);
}

static bool pfe_dir_named(struct dentry *child, const char *name)
{
	return d_is_dir(child) && !strcmp(child->d_name.name, name);
}

static bool pfe_any_dir(struct dentry *child, const char *unused)
{
	return d_is_dir(child);
}

/* The @n-th positive child of @dir that @pick takes, referenced. */
static struct dentry *pfe_child(struct dentry *dir, unsigned int n,
				pfe_pick_t pick, const char *arg)
{
	struct dentry *child, *found = NULL;

	spin_lock(&dir->d_lock);
	list_for_each_entry(child, &dir->d_subdirs, d_child) {
		spin_lock_nested(&child->d_lock, DENTRY_D_LOCK_NESTED);
		if (simple_positive(child) && pick(child, arg) && !n--) {
			found = dget_dlock(child);
			spin_unlock(&child->d_lock);
			break;
		}
		spin_unlock(&child->d_lock);
	}
	spin_unlock(&dir->d_lock);
	return found;
}

/* rm every link in @dir that @pick takes. */
static void pfe_unlink_in(struct pfe *pfe, struct dentry *dir,
			  pfe_pick_t pick, const char *arg)
{
	struct inode *inode = d_inode(dir);
	struct dentry *link;
	int ret = 0;

	inode_lock_nested(inode, I_MUTEX_PARENT);
	while (!ret && (link = pfe_child(dir, 0, pick, arg))) {
		dev_info(&pfe->pdev->dev, "controller going: unlinking %pd/%pd\n",
			 dir, link);
		ret = vfs_unlink(&init_user_ns, inode, link, NULL);
		if (ret)
			dev_err(&pfe->pdev->dev, "cannot unlink %pd/%pd: %d\n",
				dir, link, ret);
		dput(link);
	}
	inode_unlock(inode);
}

/* Links to us from functions/<driver>/<function>/{primary,secondary}. */
static void pfe_unlink_from_functions(struct pfe *pfe, struct dentry *pci_ep,
				      const char *suffix)
{
	static const char * const sides[] = { "primary", "secondary" };
	struct dentry *functions, *drv, *fn, *side;
	unsigned int i, j, k;

	functions = pfe_child(pci_ep, 0, pfe_dir_named, "functions");
	if (!functions)
		return;
	for (i = 0; (drv = pfe_child(functions, i, pfe_any_dir, NULL)); i++) {
		for (j = 0; (fn = pfe_child(drv, j, pfe_any_dir, NULL)); j++) {
			for (k = 0; k < ARRAY_SIZE(sides); k++) {
				side = pfe_child(fn, 0, pfe_dir_named, sides[k]);
				if (!side)
					continue;
				pfe_unlink_in(pfe, side, pfe_link_to, suffix);
				dput(side);
			}
			dput(fn);
		}
		dput(drv);
	}
	dput(functions);
}

/* Stop the link as `echo 0 > start` does (pci-ep-cfs's own attribute). */
static void pfe_stop_through_configfs(struct pci_epc *epc)
{
	const struct config_item_type *type = epc->group->cg_item.ci_type;
	struct configfs_attribute **attr;

	for (attr = type ? type->ct_attrs : NULL; attr && *attr; attr++) {
		if (!strcmp((*attr)->ca_name, "start") && (*attr)->store) {
			(*attr)->store(&epc->group->cg_item, "0", 1);
			return;
		}
	}
	pci_epc_stop(epc);
}

void pfe_unbind_functions(struct pfe *pfe)
{
	struct pci_epc *epc = pfe->epc;
	struct config_group *group = epc->group;
	struct dentry *dir = IS_ERR_OR_NULL(group) ? NULL :
			     group->cg_item.ci_dentry;
	char *suffix;
	bool bound;

	if (!dir)
		return;
	pfe_stop_through_configfs(epc);
	pfe_unlink_in(pfe, dir, pfe_any_link, NULL);
	suffix = kasprintf(GFP_KERNEL, "/controllers/%s", dev_name(&epc->dev));
	if (suffix && dir->d_parent && dir->d_parent->d_parent)
		pfe_unlink_from_functions(pfe, dir->d_parent->d_parent, suffix);
	kfree(suffix);

	mutex_lock(&epc->list_lock);
	bound = !list_empty(&epc->pci_epf);
	mutex_unlock(&epc->list_lock);
	if (bound)
		dev_warn(&pfe->pdev->dev, "a function is still bound to %s\n",
			 dev_name(&epc->dev));
}
