//! The XDMF sidecar is well-formed XML and every HDF5 reference in it exists in the file with the
//! dimensions it claims; hyperslabs stay in bounds.

#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;

use common::*;
use fieldflow_datasets::{Dtype, MAX_TRAJECTORIES, WriterOptions, write_xdmf};

fn dims(s: &str) -> Vec<usize> {
    s.split_whitespace().map(|d| d.parse().unwrap()).collect()
}

/// Checks every `Format="HDF"` data item against the file and every hyperslab against its
/// source; returns (uniform grids, attributes) counts.
fn check_references(xdmf: &Path, h5: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(xdmf).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &text,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Xdmf");
    assert_eq!(root.attribute("Version"), Some("3.0"));
    let file = hdf5::File::open(h5).unwrap();
    let h5_name = h5.file_name().unwrap().to_string_lossy().into_owned();
    for item in doc.descendants().filter(|n| n.has_tag_name("DataItem") && n.attribute("Format") == Some("HDF")) {
        let text = item.text().unwrap().trim();
        let (name, dataset) = text.split_once(':').unwrap();
        assert_eq!(name, h5_name);
        let ds = file.dataset(dataset).unwrap_or_else(|e| panic!("{dataset}: {e}"));
        assert_eq!(dims(item.attribute("Dimensions").unwrap()), ds.shape(), "{dataset}");
        let precision: usize = item.attribute("Precision").unwrap().parse().unwrap();
        assert_eq!(precision, ds.dtype().unwrap().size(), "{dataset}");
    }
    for slab in doc.descendants().filter(|n| n.has_tag_name("DataItem") && n.attribute("ItemType") == Some("HyperSlab"))
    {
        let children: Vec<_> = slab.children().filter(|n| n.is_element()).collect();
        assert_eq!(children.len(), 2);
        let source = dims(children[1].attribute("Dimensions").unwrap());
        let spec = dims(children[0].text().unwrap());
        let rank = source.len();
        assert_eq!(spec.len(), 3 * rank);
        let (start, count) = (&spec[..rank], &spec[2 * rank..]);
        // The result of the slab is 2D (`ny nx`, the topology's dimensionality, as ParaView's
        // reader requires), the selection picks one field: count 1 on every leading axis.
        assert_eq!(dims(slab.attribute("Dimensions").unwrap()), count[rank - 2..]);
        assert!(count[..rank - 2].iter().all(|&c| c == 1), "{count:?}");
        for a in 0..rank {
            assert!(start[a] + count[a] <= source[a], "hyperslab out of bounds: {spec:?} in {source:?}");
        }
    }
    let grids =
        doc.descendants().filter(|n| n.has_tag_name("Grid") && n.attribute("GridType") == Some("Uniform")).count();
    let attrs = doc.descendants().filter(|n| n.has_tag_name("Attribute")).count();
    (grids, attrs)
}

#[test]
fn sidecar_references_existing_datasets() {
    for dtype in [Dtype::F32, Dtype::F64] {
        let (dir, path) = tmp();
        let n = 4;
        let written = write_file(&path, n, 3, spec(dtype, true, true), &WriterOptions::default());
        assert_eq!(written.xdmf, dir.path().join("data.xdmf"));
        let (grids, attrs) = check_references(&written.xdmf, &path);
        // n sample grids + n trajectories of T frames; fields: 2 channels + 1 coefficient,
        // trajectories: 2 channels.
        assert_eq!(grids, n + n * T);
        assert_eq!(attrs, n * 3 + n * T * 2);
    }
}

#[test]
fn sidecar_attributes_select_the_right_sample_and_channel() {
    let (_dir, path) = tmp();
    let written = write_file(&path, 3, 3, spec(Dtype::F32, true, false), &WriterOptions::default());
    let text = std::fs::read_to_string(&written.xdmf).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &text,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .unwrap();
    let sample2 = doc.descendants().find(|n| n.attribute("Name") == Some("sample_2")).unwrap();
    let starts: Vec<(String, String)> = sample2
        .children()
        .filter(|n| n.has_tag_name("Attribute"))
        .map(|a| {
            let slab = a.children().find(|n| n.is_element()).unwrap();
            let spec = slab.children().find(|n| n.is_element()).unwrap().text().unwrap().to_owned();
            (a.attribute("Name").unwrap().to_owned(), spec.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        })
        .collect();
    assert_eq!(
        starts,
        [("u".into(), "2 0 0 0".into()), ("v".into(), "2 1 0 0".into()), ("a".into(), "2 0 0 0".into())]
    );
    let topo = sample2.children().find(|n| n.has_tag_name("Topology")).unwrap();
    assert_eq!(topo.attribute("TopologyType"), Some("2DRectMesh"));
    assert_eq!(dims(topo.attribute("Dimensions").unwrap()), [NY, NX]);
}

#[test]
fn trajectories_are_temporal_collections_with_the_file_times() {
    let (_dir, path) = tmp();
    let written = write_file(&path, MAX_TRAJECTORIES + 2, 8, spec(Dtype::F32, false, true), &WriterOptions::default());
    let text = std::fs::read_to_string(&written.xdmf).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &text,
        roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() },
    )
    .unwrap();
    let collections: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("Grid")
                && n.attribute("Name").is_some_and(|s| s.starts_with("trajectory_"))
                && n.attribute("GridType") == Some("Collection")
        })
        .collect();
    assert_eq!(collections.len(), MAX_TRAJECTORIES);
    for c in collections {
        assert_eq!(c.attribute("CollectionType"), Some("Temporal"));
        let times: Vec<f64> = c
            .descendants()
            .filter(|n| n.has_tag_name("Time"))
            .map(|t| t.attribute("Value").unwrap().parse().unwrap())
            .collect();
        assert_eq!(times, TIME);
    }
    check_references(&written.xdmf, &path);
}

#[test]
fn write_xdmf_regenerates_the_sidecar_of_a_finished_file() {
    let (dir, path) = tmp();
    let written = write_file(&path, 2, 2, spec(Dtype::F64, true, true), &WriterOptions::default());
    let original = std::fs::read_to_string(&written.xdmf).unwrap();
    assert!(write_xdmf(&path, false).unwrap_err().to_string().contains("--force"));
    std::fs::remove_file(&written.xdmf).unwrap();
    assert_eq!(write_xdmf(&path, false).unwrap(), dir.path().join("data.xdmf"));
    assert_eq!(std::fs::read_to_string(&written.xdmf).unwrap(), original);
}
