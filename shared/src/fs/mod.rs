//! The ISO 7816-4 file system: the MF and the tree of DFs and EFs under it.

pub mod access;
pub mod fcp;
pub mod file;
pub mod id;

use serde::{Deserialize, Serialize};

pub use access::{AccessRules, Condition, DataObjectRules, Operation, SecurityStatus};
pub use file::{Df, DoTag, Ef, EfBody, FileState, MAX_EF_SIZE, Node, RecordFile, RecordKind};
pub use id::{Aid, Fid, InvalidId, Sfi};

/// How many DF levels may lie under the MF.
pub const MAX_DEPTH: usize = 4;

/// Where a DF is: the FIDs of the DFs from the MF down to it (empty for the MF itself).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DfPath {
    fids: [Fid; MAX_DEPTH],
    len: u8,
}

impl DfPath {
    /// The MF.
    pub const MF: DfPath = DfPath {
        fids: [Fid::MF; MAX_DEPTH],
        len: 0,
    };

    /// The DFs from the MF down, the MF not included.
    pub fn fids(&self) -> &[Fid] {
        &self.fids[..usize::from(self.len)]
    }

    /// Whether this is the MF.
    pub fn is_mf(&self) -> bool {
        self.len == 0
    }

    /// The path of the child DF `fid`, if the tree may be that deep.
    pub fn child(&self, fid: Fid) -> Option<DfPath> {
        let mut path = *self;
        *path.fids.get_mut(usize::from(self.len))? = fid;
        path.len += 1;
        Some(path)
    }

    /// The path of the parent DF (the MF is its own parent).
    pub fn parent(&self) -> DfPath {
        let mut path = *self;
        path.len = path.len.saturating_sub(1);
        path
    }

    /// The FID of the DF itself.
    pub fn fid(&self) -> Fid {
        self.fids().last().copied().unwrap_or(Fid::MF)
    }
}

impl std::fmt::Debug for DfPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("3F00")?;
        for fid in self.fids() {
            write!(f, "/{fid}")?;
        }
        Ok(())
    }
}

/// The card's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSystem {
    /// The master file, root of the tree.
    pub mf: Df,
}

impl FileSystem {
    /// The DF at `path`.
    pub fn df(&self, path: &DfPath) -> Option<&Df> {
        path.fids()
            .iter()
            .try_fold(&self.mf, |df, fid| df.child_df(*fid))
    }

    /// The DF at `path`, to change it.
    pub fn df_mut(&mut self, path: &DfPath) -> Option<&mut Df> {
        path.fids()
            .iter()
            .try_fold(&mut self.mf, |df, fid| df.child_df_mut(*fid))
    }

    /// Every DF but the MF, depth first in creation order, with its path.
    pub fn dfs(&self) -> Vec<(DfPath, &Df)> {
        fn walk<'a>(df: &'a Df, path: DfPath, out: &mut Vec<(DfPath, &'a Df)>) {
            for node in &df.children {
                if let Node::Df(child) = node
                    && let Some(child_path) = path.child(child.fid)
                {
                    out.push((child_path, child));
                    walk(child, child_path, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.mf, DfPath::MF, &mut out);
        out
    }

    /// The bytes every file and data object reserves.
    pub fn capacity(&self) -> usize {
        self.mf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let a = Fid::new(0x5000).unwrap();
        let b = Fid::new(0x5100).unwrap();
        let path = DfPath::MF.child(a).unwrap().child(b).unwrap();
        assert_eq!(path.fids(), [a, b]);
        assert_eq!(path.fid(), b);
        assert_eq!(path.parent().fid(), a);
        assert_eq!(DfPath::MF.parent(), DfPath::MF);
        let deepest = path.child(a).unwrap().child(b).unwrap();
        assert!(deepest.child(a).is_none());
        assert_eq!(format!("{deepest:?}"), "3F00/5000/5100/5000/5100");
    }
}
